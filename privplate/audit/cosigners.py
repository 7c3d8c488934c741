"""The deployment's side of witnessing: which witnesses it trusts (``audit.witnesses``),
accepting their cosignatures, publishing them on the checkpoint, and checking them.

A cosignature authenticates itself: it is accepted, from anyone who posts it, only if it is
by a configured witness key, verifies over a checkpoint this log signed, and is not dated in
the future nor before the log signed that checkpoint. Each witness and tree size keeps its
latest cosignature; the first one of a witness for a size is recorded in the audit log
(``audit.cosigned``), later ones only refresh the time, and only once it moved on by
``MIN_REFRESH_SECONDS``, so a witness polling often (or a stolen witness key posting a
second later each time) can flood neither the log nor the database with writes.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from privplate.audit.cosignature import Cosignature, verify_cosignature
from privplate.audit.log import AuditLog
from privplate.audit.merkle import MerkleTree
from privplate.audit.note import (
    ALG_COSIGNATURE_V1,
    MAX_SIGNATURES,
    NoteError,
    NoteVerifier,
    SignatureLine,
    split_note,
)
from privplate.audit.signing import FORMAT_NOTE, Checkpoint, note_text, parse_note_text
from privplate.audit.verify import VerifyReport, verify_log
from privplate.errors import (
    AuditError,
    ConfigError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from privplate.store.models import AuditCheckpoint
from privplate.store.witness_models import AuditCosignature

__all__ = [
    "MAX_BODY_BYTES",
    "Accepted",
    "CosignatureCheck",
    "WitnessSummary",
    "accept_cosignature",
    "check_cosignatures",
    "configured_witnesses",
    "cosignature_lines",
    "describe",
    "verify_witnessed",
]

#: A checkpoint note with one cosignature is under 300 bytes; anything much larger is not one.
MAX_BODY_BYTES = 4096
#: A witness's clock may run a little ahead of the server's; a day ahead is not a clock.
MAX_FUTURE_SECONDS = 600
#: A kept cosignature is replaced by a later one of the same witness and size only if that one
#: is at least this much later: at most one write a minute per witness and size, whatever the
#: rate of posts (a witness round every few minutes is the norm; the checkpoint changes with
#: the signing interval, the note is cached for a minute).
MIN_REFRESH_SECONDS = 60
_LOCK = "audit.cosignature"


def configured_witnesses(vkeys: Sequence[str]) -> list[NoteVerifier]:
    """The ``audit.witnesses`` setting as verifiers; a key whose hash does not match its name
    and key, or that is not a cosignature/v1 key, is a configuration error."""
    found: list[NoteVerifier] = []
    for vkey in vkeys:
        try:
            verifier = NoteVerifier.parse(vkey)
        except NoteError as exc:
            raise ConfigError(f"audit.witnesses: {vkey.split('+')[0]}: {exc}") from None
        if verifier.alg != ALG_COSIGNATURE_V1:
            raise ConfigError(
                f"audit.witnesses: {verifier.name} is not a cosignature/v1 key (algorithm 0x04)"
            )
        found.append(verifier)
    return found


@dataclass(frozen=True)
class Accepted:
    witness: str
    tree_size: int
    timestamp: int
    #: "new" (first cosignature of this witness for this size, audited), "refreshed" (a later
    #: time) or "unchanged" (not newer than the one kept).
    recorded: str


def accept_cosignature(
    audit: AuditLog,
    witnesses: Sequence[NoteVerifier],
    body: str,
    *,
    now: datetime | None = None,
) -> Accepted:
    """Check and store the cosignature in ``body``: a checkpoint note carrying the witness's
    cosignature line (and perhaps others, ignored). Raises InvalidRequest (malformed, does not
    verify, dated ahead), PermissionDenied (no configured witness signed it), NotFound (this
    log signed no such checkpoint) or Conflict (it did, with another root)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        text, lines = split_note(body)
        origin, size, root = parse_note_text(text)
    except AuditError as exc:
        raise InvalidRequest(f"not a cosigned checkpoint note: {exc}") from None
    if origin != audit.signer.origin:
        raise InvalidRequest(f"the checkpoint is of log {origin}, not of this log")
    by_key = {(w.name, w.key_hash): w for w in witnesses}
    matching = [
        (by_key[(ln.name, ln.key_hash)], ln) for ln in lines if (ln.name, ln.key_hash) in by_key
    ]
    if not matching:
        raise PermissionDenied(
            "the note carries no cosignature by a witness this deployment accepts "
            "(its administrator lists witness keys in audit.witnesses)"
        )
    verifier, line = matching[0]
    try:
        cosignature = verify_cosignature(verifier, text, line)
    except NoteError as exc:
        raise InvalidRequest(str(exc)) from None
    if cosignature.timestamp > moment.timestamp() + MAX_FUTURE_SECONDS:
        raise InvalidRequest(
            f"the cosignature by {verifier.name} is dated {cosignature.timestamp}, ahead of "
            "the server's clock: check the witness's clock"
        )
    kept_stmt = select(
        AuditCosignature.id, AuditCosignature.timestamp, AuditCosignature.root
    ).where(
        AuditCosignature.witness_key == verifier.public_key,
        AuditCosignature.tree_size == size,
    )
    with audit.db.read() as conn:  # a repeat changes nothing: no write lock for it
        kept = conn.execute(kept_stmt).first()
    if (
        kept is not None
        and hmac.compare_digest(bytes(kept.root), root)  # another root is a Conflict, below
        and cosignature.timestamp < kept.timestamp + MIN_REFRESH_SECONDS
    ):
        return Accepted(verifier.name, size, cosignature.timestamp, "unchanged")
    with audit.db.write() as conn:
        audit.db.lock_subject(conn, _LOCK)
        signed = [
            (bytes(r.root), r.created_at)
            for r in conn.execute(
                select(AuditCheckpoint.root, AuditCheckpoint.created_at).where(
                    AuditCheckpoint.public_key == audit.signer.public_key,
                    AuditCheckpoint.tree_size == size,
                    AuditCheckpoint.format == FORMAT_NOTE,
                )
            )
        ]
        if not signed:
            raise NotFound(f"this log signed no checkpoint note of {size} entries")
        signed_at = [when for r, when in signed if hmac.compare_digest(r, root)]
        if not signed_at:
            raise Conflict(
                f"witness {verifier.name} cosigned a root for {size} entries that this log "
                "never signed"
            )
        # A witness cannot have seen a checkpoint before it was signed: such a time would put
        # the witness's check of the log earlier than it was.
        if cosignature.timestamp < min(signed_at).timestamp() - MAX_FUTURE_SECONDS:
            raise InvalidRequest(
                f"the cosignature by {verifier.name} is dated {cosignature.timestamp}, before "
                f"this log signed the checkpoint of {size} entries: check the witness's clock"
            )
        kept = conn.execute(kept_stmt).first()
        values = {
            "witness": verifier.name,
            "root": root,
            "timestamp": cosignature.timestamp,
            "signature": cosignature.signature,
            "received_at": moment,
        }
        if kept is None:
            conn.execute(
                insert(AuditCosignature).values(
                    witness_key=verifier.public_key, tree_size=size, **values
                )
            )
            audit.append(
                conn,
                actor=f"witness:{verifier.name}",
                action="audit.cosigned",
                details={
                    "witness": verifier.vkey(),
                    "tree_size": size,
                    "timestamp": cosignature.timestamp,
                },
                now=moment,
            )
            recorded = "new"
        elif cosignature.timestamp >= kept.timestamp + MIN_REFRESH_SECONDS:
            conn.execute(
                update(AuditCosignature).where(AuditCosignature.id == kept.id).values(**values)
            )
            recorded = "refreshed"
        else:
            recorded = "unchanged"
    return Accepted(verifier.name, size, cosignature.timestamp, recorded)


def cosignature_lines(audit: AuditLog, checkpoint: Checkpoint) -> list[SignatureLine]:
    """The kept cosignatures of ``checkpoint`` (its size and root), as signature lines for
    the published note: a client fetches one note with the log's and the witnesses'
    signatures."""
    with audit.db.read() as conn:
        rows = conn.execute(
            select(AuditCosignature)
            .where(AuditCosignature.tree_size == checkpoint.tree_size)
            .order_by(AuditCosignature.witness, AuditCosignature.id)
            .limit(MAX_SIGNATURES - 1)
        )
        return [
            Cosignature(
                r.witness,
                NoteVerifier(r.witness, bytes(r.witness_key), ALG_COSIGNATURE_V1).key_hash,
                r.timestamp,
                bytes(r.signature),
            ).line()
            for r in rows
            if hmac.compare_digest(bytes(r.root), checkpoint.root)
        ]


# -- verification ----------------------------------------------------------------------------


@dataclass
class WitnessSummary:
    name: str
    vkey: str
    #: Listed in audit.witnesses now (a removed witness's cosignatures still verify).
    configured: bool
    #: (tree size, cosignature time) of each size it cosigned, ascending.
    cosigned: list[tuple[int, datetime]] = field(default_factory=list)

    @property
    def latest(self) -> tuple[int, datetime] | None:
        return max(self.cosigned, default=None)


@dataclass
class CosignatureCheck:
    witnesses: list[WitnessSummary]
    problems: list[str]


def check_cosignatures(
    audit: AuditLog, tree: MerkleTree, witnesses: Sequence[NoteVerifier]
) -> CosignatureCheck:
    """Check every kept cosignature against its witness's key and against ``tree`` (the log
    as verification recomputed it): a cosignature that does not verify was edited; one whose
    root the log no longer has means the log was rewritten after the witness saw it."""
    configured = {(w.name, w.public_key) for w in witnesses}
    by_witness: dict[tuple[str, bytes], WitnessSummary] = {
        (w.name, w.public_key): WitnessSummary(w.name, w.vkey(), True) for w in witnesses
    }
    problems: list[str] = []
    with audit.db.read() as conn:
        rows = conn.execute(
            select(AuditCosignature).order_by(AuditCosignature.tree_size, AuditCosignature.id)
        ).all()
    for r in rows:
        key = bytes(r.witness_key)
        root = bytes(r.root)
        try:
            verifier = NoteVerifier(r.witness, key, ALG_COSIGNATURE_V1)
        except NoteError:
            problems.append(f"a stored cosignature names an invalid witness key ({r.witness!r})")
            continue
        summary = by_witness.setdefault(
            (r.witness, key),
            WitnessSummary(r.witness, verifier.vkey(), (r.witness, key) in configured),
        )
        line = Cosignature(r.witness, verifier.key_hash, r.timestamp, bytes(r.signature)).line()
        try:
            verify_cosignature(verifier, note_text(audit.signer.origin, r.tree_size, root), line)
        except NoteError:
            problems.append(
                f"the stored cosignature by witness {r.witness} of {r.tree_size} entries does "
                "not verify (edited in the database)"
            )
            continue
        when = datetime.fromtimestamp(r.timestamp, UTC)
        if r.tree_size > tree.size:
            problems.append(
                f"log truncated: witness {r.witness} cosigned {r.tree_size} entries at "
                f"{when.isoformat()}, the log now has {tree.size}"
            )
        elif not hmac.compare_digest(tree.root(r.tree_size), root):
            problems.append(
                f"log rewritten: witness {r.witness} cosigned {r.tree_size} entries with root "
                f"{root.hex()} at {when.isoformat()}, the log's first {r.tree_size} entries "
                f"now have root {tree.root(r.tree_size).hex()}"
            )
        summary.cosigned.append((r.tree_size, when))
    return CosignatureCheck(list(by_witness.values()), problems)


def verify_witnessed(
    audit: AuditLog, witnesses: Sequence[NoteVerifier], *, witness: Checkpoint | None = None
) -> tuple[VerifyReport, list[WitnessSummary]]:
    """The full verification (audit/verify.py), then every kept cosignature against the tree
    it recomputed: what `privplate audit verify` and GET /audit/verify report."""
    report = verify_log(audit.db, audit.signer, witness=witness, stored=audit.checkpoints())
    check = check_cosignatures(audit, report.tree, witnesses)
    report.problems.extend(check.problems)
    return report, check.witnesses


def describe(summary: WitnessSummary, *, shown: int = 5) -> str:
    """One line: which sizes a witness cosigned, and its latest."""
    state = "configured" if summary.configured else "no longer in audit.witnesses"
    latest = summary.latest
    if latest is None:
        return f"witness {summary.name} ({state}): no cosignature yet"
    sizes = [str(size) for size, _ in summary.cosigned]
    listed = ", ".join(sizes[-shown:])
    if len(sizes) > shown:
        listed = "..., " + listed
    plural = "size" if len(sizes) == 1 else "sizes"
    return (
        f"witness {summary.name} ({state}): cosigned {len(sizes)} {plural} ({listed}); "
        f"latest {latest[0]} entries at {latest[1].isoformat()}"
    )
