"""Key ceremonies: deal a new evidence key to compliance officers, re-share it to a new set of
officers without changing X, and rotate to a new X for new evidence.

The ceremony machine holds x only while it deals the shares; the published results are X and
the commitments X_i, recorded in the database and the audit log, and X in privplate.toml.
Each share goes to a different person (not merely a different account), and no officer also
has an investigator or operator account.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, insert, select, update

from privplate.ceremony.reconstruct import reconstruct_secret
from privplate.ceremony.sharefile import ShareFile, Strength, seal_share, write_share_file
from privplate.deployment import Deployment
from privplate.errors import AlreadyExists, InvalidRequest, NotFound, SealingError
from privplate.identity.accounts import (
    NOT_WITH_A_SHARE,
    PEOPLE_LOCK,
    get_user,
    person_accounts,
)
from privplate.identity.roles import Role
from privplate.sealing import group
from privplate.settings import CONFIG_FILENAME
from privplate.store.evidence_keys import activate_evidence_key
from privplate.store.unseal_models import ShareCommitment, ShareSet
from privplate.threshold.shamir import Share, split

_KEY_LINE = re.compile(r'^evidence_public_key\s*=\s*".*"\s*$', re.MULTILINE)


@dataclass(frozen=True)
class CeremonyResult:
    public_key: bytes
    share_set_id: uuid.UUID
    threshold: int
    files: dict[str, Path]


def _check_officers(conn: Connection, officers: Sequence[str], threshold: int) -> None:
    if len(set(officers)) != len(officers):
        raise InvalidRequest("each officer holds one share: the officer list has a duplicate")
    if threshold < 2:
        raise InvalidRequest("the threshold must be at least 2 (the two-person rule)")
    if threshold > len(officers):
        raise InvalidRequest(f"threshold {threshold} is more than the {len(officers)} officers")
    people: dict[str, str] = {}
    for name in officers:
        user = get_user(conn, name)
        if user.role is not Role.COMPLIANCE or user.disabled:
            raise InvalidRequest(f"{name!r} is not an active compliance officer")
        if user.person in people:
            raise InvalidRequest(
                f"{people[user.person]!r} and {name!r} are accounts of one person; each share "
                "goes to a different person"
            )
        people[user.person] = name
        asks = [
            a
            for a in person_accounts(conn, user.person)
            if a.role in NOT_WITH_A_SHARE and not a.disabled
        ]
        if asks:
            raise InvalidRequest(
                f"{name!r} also has the {asks[0].role.value} account {asks[0].name!r}; an officer "
                "cannot be an investigator or operator (disable that account first)"
            )


def _deal(
    secret: bytearray,
    officers: Sequence[tuple[str, str]],
    threshold: int,
    out_dir: Path,
    strength: Strength,
) -> tuple[bytes, uuid.UUID, list[Share], dict[str, Path]]:
    public_key = group.base_mul(bytes(secret))
    shares = split(bytes(secret), shares=len(officers), threshold=threshold)
    set_id = uuid.uuid4()
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    files: dict[str, Path] = {}
    for (name, passphrase), share in zip(officers, shares, strict=True):
        path = out_dir / f"{name}.share"
        if path.exists():
            raise AlreadyExists(f"{path} exists; move it away or choose another --out directory")
        sealed: ShareFile = seal_share(
            share,
            passphrase,
            ceremony_id=set_id,
            officer=name,
            threshold=threshold,
            officers=len(officers),
            public_key=public_key,
            strength=strength,
        )
        write_share_file(path, sealed)
        files[name] = path
    return public_key, set_id, shares, files


def _record_set(
    conn: Connection,
    set_id: uuid.UUID,
    public_key: bytes,
    threshold: int,
    officers: Sequence[str],
    shares: Sequence[Share],
    actor: str,
    now: datetime,
) -> None:
    conn.execute(
        insert(ShareSet).values(
            id=set_id,
            public_key=public_key,
            threshold=threshold,
            officers=len(officers),
            created_at=now,
            created_by=actor,
        )
    )
    conn.execute(
        insert(ShareCommitment),
        [
            {
                "share_set_id": set_id,
                "share_index": s.index,
                "officer": name,
                "commitment": s.commitment,
            }
            for name, s in zip(officers, shares, strict=True)
        ],
    )


def _write_public_key(dep: Deployment, public_key: bytes) -> None:
    path = dep.settings.home / CONFIG_FILENAME
    text = path.read_text(encoding="utf-8")
    line = f'evidence_public_key = "{public_key.hex()}"'
    text = _KEY_LINE.sub(line, text) if _KEY_LINE.search(text) else f"{line}\n{text}"
    path.write_text(text, encoding="utf-8")


def hold_ceremony(
    dep: Deployment,
    *,
    officers: Sequence[tuple[str, str]],
    threshold: int,
    out_dir: Path,
    strength: Strength = "moderate",
) -> CeremonyResult:
    """Deal a fresh evidence key to ``officers`` ((name, passphrase) pairs). If a key is in use,
    this is a rotation: new evidence is sealed to the new X, older evidence stays openable
    with the old key's officers until retention removes it."""
    names = [n for n, _ in officers]
    with dep.db.read() as conn:
        _check_officers(conn, names, threshold)
    secret = bytearray(group.random_scalar())
    try:
        public_key, set_id, shares, files = _deal(secret, officers, threshold, out_dir, strength)
    finally:
        secret[:] = bytes(len(secret))  # best effort: Python may hold other copies briefly
    now = datetime.now(UTC)
    with dep.db.write() as conn:
        dep.db.lock_subject(conn, PEOPLE_LOCK)  # no new account passes its check meanwhile
        _check_officers(conn, names, threshold)  # again: accounts may have changed meanwhile
        retired = activate_evidence_key(conn, public_key, now)
        _record_set(conn, set_id, public_key, threshold, names, shares, dep.actor, now)
        dep.audit.append(
            conn,
            actor=dep.actor,
            action="keys.ceremony",
            details={
                "public_key": public_key.hex(),
                "share_set": str(set_id),
                "threshold": threshold,
                "officers": names,
                "commitments": [s.commitment.hex() for s in shares],
                "rotation": bool(retired),
            },
        )
    _write_public_key(dep, public_key)
    return CeremonyResult(public_key, set_id, threshold, files)


def current_share_set(conn: Connection, public_key: bytes) -> tuple[uuid.UUID, int]:
    row = conn.execute(
        select(ShareSet.id, ShareSet.threshold).where(
            ShareSet.public_key == public_key, ShareSet.superseded_at.is_(None)
        )
    ).first()
    if row is None:
        raise NotFound("no live share set for this evidence key")
    return row.id, row.threshold


def reshare(
    dep: Deployment,
    *,
    old_shares: Sequence[tuple[ShareFile, str]],
    officers: Sequence[tuple[str, str]],
    threshold: int,
    out_dir: Path,
    strength: Strength = "moderate",
) -> CeremonyResult:
    """Deal the same X to a new set of officers (e.g. one left), from ``threshold`` old shares
    with their passphrases. The old shares stop counting for unseal requests."""
    if not old_shares:
        raise InvalidRequest("give the old share files (at least the old threshold)")
    public_key = old_shares[0][0].public_key
    with dep.db.read() as conn:
        _check_officers(conn, [n for n, _ in officers], threshold)
        old_set, old_threshold = current_share_set(conn, public_key)
        commitments = {
            r.share_index: bytes(r.commitment)
            for r in conn.execute(
                select(ShareCommitment).where(ShareCommitment.share_set_id == old_set)
            )
        }
    opened: list[Share] = []
    for share_file, passphrase in old_shares:
        if share_file.ceremony_id != old_set or share_file.public_key != public_key:
            raise SealingError("a share file belongs to another ceremony or an older share set")
        share = share_file.open(passphrase)
        if commitments.get(share.index) != share.commitment:
            raise SealingError("a share does not match the recorded commitments")
        opened.append(share)
    secret = bytearray(reconstruct_secret(opened, old_threshold))
    try:
        if group.base_mul(bytes(secret)) != public_key:
            raise SealingError("the old shares do not rebuild the evidence key")
        _, set_id, shares, files = _deal(secret, officers, threshold, out_dir, strength)
    finally:
        secret[:] = bytes(len(secret))
    now = datetime.now(UTC)
    names = [n for n, _ in officers]
    with dep.db.write() as conn:
        dep.db.lock_subject(conn, PEOPLE_LOCK)  # no new account passes its check meanwhile
        _check_officers(conn, names, threshold)  # again: accounts may have changed meanwhile
        conn.execute(update(ShareSet).where(ShareSet.id == old_set).values(superseded_at=now))
        _record_set(conn, set_id, public_key, threshold, names, shares, dep.actor, now)
        dep.audit.append(
            conn,
            actor=dep.actor,
            action="keys.reshared",
            details={
                "public_key": public_key.hex(),
                "share_set": str(set_id),
                "replaces": str(old_set),
                "threshold": threshold,
                "officers": names,
                "commitments": [s.commitment.hex() for s in shares],
            },
        )
    return CeremonyResult(public_key, set_id, threshold, files)
