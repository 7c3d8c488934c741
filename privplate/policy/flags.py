"""Compliance flags: what a compliance officer must review (one per kind, subject and day)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from privplate.audit import AuditLog
from privplate.errors import NotFound, PermissionDenied
from privplate.identity.accounts import person_of_actor
from privplate.store.database import Database
from privplate.store.server_models import ComplianceFlag


class FlagKind(StrEnum):
    QUERY_QUOTA = "query-quota"
    DEPLOYMENT_QUERY_QUOTA = "deployment-query-quota"
    HOTLIST_QUOTA = "hotlist-quota"
    DENIED_QUERY = "denied-query"
    DENIED_HOTLIST_ENTRY = "denied-hotlist-entry"


@dataclass(frozen=True)
class FlagInfo:
    id: uuid.UUID
    kind: FlagKind
    subject: str
    day: str
    created_at: datetime
    occurrences: int
    details: dict[str, Any]
    reviewed_by: str | None
    reviewed_at: datetime | None
    resolution: str | None


def raise_flag(
    conn: Connection,
    *,
    kind: FlagKind,
    subject: str,
    details: dict[str, Any],
    now: datetime | None = None,
) -> uuid.UUID:
    """Create today's flag for (kind, subject), or count one more occurrence of it.

    One statement (insert, or on conflict add one), so concurrent requests raising the same
    flag neither fail on the unique constraint nor lose an occurrence.
    """
    now = now or datetime.now(UTC)
    day = now.date().isoformat()
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(ComplianceFlag).values(
        id=uuid.uuid4(),
        kind=kind.value,
        subject=subject,
        day=day,
        created_at=now,
        details=json.dumps(details, sort_keys=True),
        occurrences=1,
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=[ComplianceFlag.kind, ComplianceFlag.subject, ComplianceFlag.day],
        set_={"occurrences": ComplianceFlag.occurrences + 1},
    ).returning(ComplianceFlag.id)
    return uuid.UUID(str(conn.execute(upsert).scalar_one()))


def _info(row: Any) -> FlagInfo:
    m = row._mapping
    return FlagInfo(
        id=m["id"],
        kind=FlagKind(m["kind"]),
        subject=m["subject"],
        day=m["day"],
        created_at=m["created_at"],
        occurrences=m["occurrences"],
        details=json.loads(m["details"]),
        reviewed_by=m["reviewed_by"],
        reviewed_at=m["reviewed_at"],
        resolution=m["resolution"],
    )


def list_flags(*, db: Database, open_only: bool = True, limit: int = 200) -> list[FlagInfo]:
    stmt = select(ComplianceFlag).order_by(ComplianceFlag.created_at.desc()).limit(limit)
    if open_only:
        stmt = stmt.where(ComplianceFlag.reviewed_at.is_(None))
    with db.read() as conn:
        return [_info(r) for r in conn.execute(stmt)]


def subject_person(conn: Connection, kind: FlagKind, subject: str) -> str | None:
    """Who a flag is about, as :func:`person_of_actor` names them (``person:ID``), or None for
    a flag about the deployment. Subjects are a person (``person:ID``: quotas), an actor
    (``user:NAME``: denied hotlist entries) or an account name (denied queries, and quota
    flags raised before quotas were per person)."""
    if kind is FlagKind.DEPLOYMENT_QUERY_QUOTA:
        return None
    if subject.startswith("person:"):
        return subject
    return person_of_actor(conn, subject if ":" in subject else f"user:{subject}")


def review_flag(
    conn: Connection, *, flag_id: uuid.UUID, reviewer: str, resolution: str
) -> FlagInfo:
    """Close a flag. ``reviewer`` is an actor; a person cannot close a flag about themselves,
    from any of their accounts."""
    row = conn.execute(select(ComplianceFlag).where(ComplianceFlag.id == flag_id)).first()
    if row is None:
        raise NotFound("no compliance flag with this id")
    if row._mapping["reviewed_at"] is not None:
        raise NotFound("this compliance flag was already reviewed")
    about = subject_person(conn, FlagKind(row._mapping["kind"]), row._mapping["subject"])
    if about is not None and about == person_of_actor(conn, reviewer):
        raise PermissionDenied(
            "this compliance flag is about you: you cannot review it, from any of your "
            "accounts; another compliance officer must"
        )
    now = datetime.now(UTC)
    # Conditional, so that of two officers closing the flag at once only one does.
    done = conn.execute(
        update(ComplianceFlag)
        .where(ComplianceFlag.id == flag_id, ComplianceFlag.reviewed_at.is_(None))
        .values(reviewed_by=reviewer, reviewed_at=now, resolution=resolution)
    )
    if done.rowcount == 0:
        raise NotFound("this compliance flag was already reviewed")
    row = conn.execute(select(ComplianceFlag).where(ComplianceFlag.id == flag_id)).one()
    return _info(row)


def close_flag(
    *, db: Database, audit: AuditLog, flag_id: uuid.UUID, reviewer: str, resolution: str
) -> FlagInfo:
    """Review a flag on the record; a refused review is audited too."""
    try:
        with db.write() as conn:
            info = review_flag(conn, flag_id=flag_id, reviewer=reviewer, resolution=resolution)
            audit.append(
                conn,
                actor=reviewer,
                action="compliance.flag_reviewed",
                details={"flag": str(flag_id), "resolution": resolution},
            )
    except PermissionDenied as exc:
        audit.record(
            actor=reviewer,
            action="compliance.flag_review_refused",
            details={"flag": str(flag_id), "reason": str(exc)},
        )
        raise
    return info
