"""Legal holds: keep a read or evidence item through purges, with two people involved.

A hold is requested with a case number and a justification and takes effect only when someone
other than the requester approves it: another person, not another account of the requester.
Holds expire; every step is audited in the same transaction as the change it records.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, exists, insert, select, update
from sqlalchemy.orm import QueryableAttribute

from privplate.audit import AuditLog
from privplate.errors import NotFound, PrivplateError
from privplate.identity.accounts import person_of_actor
from privplate.store.database import Database
from privplate.store.models import Evidence, LegalHold, Read


class HoldKind(StrEnum):
    """What a legal hold keeps through purges."""

    READ = "read"
    EVIDENCE = "evidence"


MAX_HOLD = timedelta(days=3650)


class HoldRefused(PrivplateError):
    exit_code = 77  # EX_NOPERM


@dataclass(frozen=True)
class HoldInfo:
    id: uuid.UUID
    kind: str
    target_id: uuid.UUID
    case_number: str
    requested_by: str
    approved_by: str | None
    expires_at: datetime
    released_at: datetime | None


def active_hold(
    kind: HoldKind, target: ColumnElement[uuid.UUID] | QueryableAttribute[uuid.UUID], now: datetime
) -> ColumnElement[bool]:
    """SQL condition: ``target`` has an approved, unexpired, unreleased hold."""
    return exists().where(
        LegalHold.target_kind == kind,
        LegalHold.target_id == target,
        LegalHold.approved_at.is_not(None),
        LegalHold.released_at.is_(None),
        LegalHold.expires_at > now,
    )


def held_ids(conn: Connection, kind: HoldKind, now: datetime) -> set[uuid.UUID]:
    """The items of ``kind`` under an approved, unexpired, unreleased hold (few, by nature)."""
    return set(
        conn.execute(
            select(LegalHold.target_id).where(
                LegalHold.target_kind == kind,
                LegalHold.approved_at.is_not(None),
                LegalHold.released_at.is_(None),
                LegalHold.expires_at > now,
            )
        ).scalars()
    )


def _info(r: Any) -> HoldInfo:
    return HoldInfo(
        id=r.id,
        kind=r.target_kind,
        target_id=r.target_id,
        case_number=r.case_number,
        requested_by=r.requested_by,
        approved_by=r.approved_by,
        expires_at=r.expires_at,
        released_at=r.released_at,
    )


def _target_time(conn: Connection, kind: HoldKind, target_id: uuid.UUID) -> datetime | None:
    """When the target was observed, or None if it is not stored."""
    if kind == HoldKind.READ:
        stmt = select(Read.observed_at).where(Read.read_id == target_id)
    else:
        stmt = select(Evidence.observed_at).where(Evidence.id == target_id)
    return conn.execute(stmt.limit(1)).scalar()


def request_hold(
    *,
    db: Database,
    audit: AuditLog,
    kind: HoldKind,
    target_id: uuid.UUID,
    case_number: str,
    justification: str,
    requested_by: str,
    duration: timedelta,
    now: datetime | None = None,
) -> HoldInfo:
    now = now or datetime.now(UTC)
    if not case_number.strip() or not justification.strip():
        raise HoldRefused("a legal hold needs a case number and a justification")
    if not timedelta(0) < duration <= MAX_HOLD:
        raise HoldRefused("a legal hold lasts between one second and ten years")
    with db.write() as conn:
        observed_at = _target_time(conn, kind, target_id)
        if observed_at is None:
            raise NotFound(f"no {kind} with id {target_id} is stored (it may have been purged)")
        hold_id = uuid.uuid4()
        conn.execute(
            insert(LegalHold).values(
                id=hold_id,
                target_kind=kind,
                target_id=target_id,
                target_observed_at=observed_at,
                case_number=case_number.strip(),
                justification=justification.strip(),
                requested_by=requested_by,
                requested_at=now,
                expires_at=now + duration,
            )
        )
        audit.append(
            conn,
            actor=requested_by,
            action="hold.requested",
            details={
                "hold": str(hold_id),
                "kind": kind,
                "target": str(target_id),
                "case": case_number.strip(),
                "justification": justification.strip(),
                "expires_at": (now + duration).isoformat(),
            },
        )
        return _info(conn.execute(select(LegalHold).where(LegalHold.id == hold_id)).one())


def approve_hold(
    *,
    db: Database,
    audit: AuditLog,
    hold_id: uuid.UUID,
    approved_by: str,
    now: datetime | None = None,
) -> HoldInfo:
    now = now or datetime.now(UTC)
    with db.write() as conn:
        row = conn.execute(select(LegalHold).where(LegalHold.id == hold_id)).first()
        if row is None:
            raise NotFound(f"no legal hold with id {hold_id}")
        if person_of_actor(conn, row.requested_by) == person_of_actor(conn, approved_by):
            raise HoldRefused(
                "the requester of a legal hold cannot approve it, from any of their accounts"
            )
        if row.approved_at is not None or row.released_at is not None or row.expires_at <= now:
            raise HoldRefused("this legal hold is already approved, released or expired")
        conn.execute(
            update(LegalHold)
            .where(LegalHold.id == hold_id)
            .values(approved_by=approved_by, approved_at=now)
        )
        audit.append(
            conn,
            actor=approved_by,
            action="hold.approved",
            details={"hold": str(hold_id), "case": row.case_number},
        )
        return _info(conn.execute(select(LegalHold).where(LegalHold.id == hold_id)).one())


def release_hold(
    *,
    db: Database,
    audit: AuditLog,
    hold_id: uuid.UUID,
    released_by: str,
    now: datetime | None = None,
) -> None:
    now = now or datetime.now(UTC)
    with db.write() as conn:
        done = conn.execute(
            update(LegalHold)
            .where(LegalHold.id == hold_id, LegalHold.released_at.is_(None))
            .values(released_at=now)
        ).rowcount
        if not done:
            raise NotFound(f"no open legal hold with id {hold_id}")
        audit.append(
            conn, actor=released_by, action="hold.released", details={"hold": str(hold_id)}
        )


def expire_holds(conn: Connection, audit: AuditLog, *, actor: str, now: datetime) -> int:
    """Mark holds past their expiry as released (in the purge's transaction) and audit it."""
    expired = [
        r.id
        for r in conn.execute(
            select(LegalHold.id).where(
                and_(LegalHold.released_at.is_(None), LegalHold.expires_at <= now)
            )
        )
    ]
    if expired:
        conn.execute(update(LegalHold).where(LegalHold.id.in_(expired)).values(released_at=now))
        audit.append(
            conn, actor=actor, action="hold.expired", details={"holds": [str(h) for h in expired]}
        )
    return len(expired)


def list_holds(*, db: Database) -> list[HoldInfo]:
    with db.read() as conn:
        return [_info(r) for r in conn.execute(select(LegalHold).order_by(LegalHold.requested_at))]
