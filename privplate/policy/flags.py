"""Compliance flags: what a compliance officer must review (one per kind, subject and day)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from privplate.errors import NotFound
from privplate.store.database import Database
from privplate.store.server_models import ComplianceFlag

_flags: Table = ComplianceFlag.__table__  # type: ignore[assignment]


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
    """Create today's flag for (kind, subject), or count one more occurrence of it."""
    now = now or datetime.now(UTC)
    day = now.date().isoformat()
    row = conn.execute(
        select(_flags.c.id, _flags.c.occurrences).where(
            _flags.c.kind == kind.value, _flags.c.subject == subject, _flags.c.day == day
        )
    ).first()
    if row is not None:
        conn.execute(
            update(_flags).where(_flags.c.id == row.id).values(occurrences=row.occurrences + 1)
        )
        return uuid.UUID(str(row.id))
    flag_id = uuid.uuid4()
    conn.execute(
        insert(_flags).values(
            id=flag_id,
            kind=kind.value,
            subject=subject,
            day=day,
            created_at=now,
            details=json.dumps(details, sort_keys=True),
            occurrences=1,
        )
    )
    return flag_id


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
    stmt = select(_flags).order_by(_flags.c.created_at.desc()).limit(limit)
    if open_only:
        stmt = stmt.where(_flags.c.reviewed_at.is_(None))
    with db.read() as conn:
        return [_info(r) for r in conn.execute(stmt)]


def review_flag(
    conn: Connection, *, flag_id: uuid.UUID, reviewer: str, resolution: str
) -> FlagInfo:
    row = conn.execute(select(_flags).where(_flags.c.id == flag_id)).first()
    if row is None:
        raise NotFound("no compliance flag with this id")
    if row._mapping["reviewed_at"] is not None:
        raise NotFound("this compliance flag was already reviewed")
    now = datetime.now(UTC)
    conn.execute(
        update(_flags)
        .where(_flags.c.id == flag_id)
        .values(reviewed_by=reviewer, reviewed_at=now, resolution=resolution)
    )
    row = conn.execute(select(_flags).where(_flags.c.id == flag_id)).one()
    return _info(row)
