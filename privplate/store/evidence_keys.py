"""Evidence public keys X: the one active key (from the latest ceremony) and the key an item
observed at a given time was sealed to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, or_, select, update

from privplate.store.unseal_models import EvidenceKey, ShareCommitment, ShareSet


@dataclass(frozen=True)
class EvidenceKeyInfo:
    public_key: bytes
    activated_at: datetime
    retired_at: datetime | None


def active_evidence_key(conn: Connection) -> EvidenceKeyInfo | None:
    """The key edges seal to now: the one no ceremony has retired (None before the first)."""
    row = conn.execute(
        select(EvidenceKey.public_key, EvidenceKey.activated_at, EvidenceKey.retired_at).where(
            EvidenceKey.retired_at.is_(None)
        )
    ).first()
    return EvidenceKeyInfo(bytes(row[0]), row[1], row[2]) if row is not None else None


def keys_live_at(conn: Connection, observed: datetime) -> list[bytes]:
    """Keys an edge could have sealed to at ``observed``: active then and not retired before."""
    return [
        bytes(k)
        for k in conn.execute(
            select(EvidenceKey.public_key).where(
                EvidenceKey.activated_at <= observed,
                or_(EvidenceKey.retired_at.is_(None), EvidenceKey.retired_at > observed),
            )
        ).scalars()
    ]


def known_evidence_key(conn: Connection, public_key: bytes) -> bool:
    return (
        conn.execute(
            select(EvidenceKey.public_key).where(EvidenceKey.public_key == public_key)
        ).first()
        is not None
    )


def activate_evidence_key(conn: Connection, public_key: bytes, now: datetime) -> int:
    """Make ``public_key`` the active key (a ceremony's new X), retiring the one before it;
    returns how many keys were retired (0 at the first ceremony)."""
    retired = conn.execute(
        update(EvidenceKey).where(EvidenceKey.retired_at.is_(None)).values(retired_at=now)
    ).rowcount
    conn.execute(insert(EvidenceKey).values(public_key=public_key, activated_at=now))
    return int(retired)


@dataclass(frozen=True)
class Commitment:
    """X_i = x_i*B of one officer's share."""

    share_index: int
    officer: str
    commitment: bytes


@dataclass(frozen=True)
class KeySet:
    """The active key and the share set (threshold, officers' commitments) that can open it."""

    key: EvidenceKeyInfo
    share_set_id: uuid.UUID
    threshold: int
    commitments: list[Commitment]


def active_key_set(conn: Connection) -> KeySet | None:
    key = active_evidence_key(conn)
    if key is None:
        return None
    share_set = conn.execute(
        select(ShareSet.id, ShareSet.threshold).where(
            ShareSet.public_key == key.public_key, ShareSet.superseded_at.is_(None)
        )
    ).one()
    commits = conn.execute(
        select(ShareCommitment.share_index, ShareCommitment.officer, ShareCommitment.commitment)
        .where(ShareCommitment.share_set_id == share_set.id)
        .order_by(ShareCommitment.share_index)
    ).all()
    return KeySet(
        key=key,
        share_set_id=share_set.id,
        threshold=share_set.threshold,
        commitments=[Commitment(c[0], c[1], bytes(c[2])) for c in commits],
    )
