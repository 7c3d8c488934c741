"""PostgreSQL time partitions of ``reads`` and ``evidence`` (one per UTC day).

Retention drops whole partitions instead of deleting rows, which is fast and leaves no dead
tuples behind. Partitions are created ahead of time by migrations and purges, and on demand
when a late read arrives for a day that has none.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, text

from privplate.store.models import PARTITIONED_TABLES

DAYS_AHEAD = 7
_PARTITION_LOCK = 7451002


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def ensure_partitions(conn: Connection, days: Iterable[date]) -> None:
    """Create the daily partitions of every partitioned table for ``days`` if missing."""
    wanted = sorted(set(days))
    if not wanted:
        return
    # Concurrent CREATE TABLE IF NOT EXISTS can still collide; serialize creators.
    conn.execute(text(f"SELECT pg_advisory_xact_lock({_PARTITION_LOCK})"))
    for table in PARTITIONED_TABLES:
        for day in wanted:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(table, day)} "
                    f"PARTITION OF {table} FOR VALUES FROM ('{start.isoformat()}') "
                    f"TO ('{end.isoformat()}')"
                )
            )


def ensure_partitions_ahead(
    conn: Connection, *, now: datetime | None = None, days_ahead: int = DAYS_AHEAD
) -> None:
    """Partitions from yesterday to ``days_ahead`` days from now."""
    today = day_of(now or datetime.now(UTC))
    ensure_partitions(conn, (today + timedelta(days=d) for d in range(-1, days_ahead + 1)))


def existing_partitions(conn: Connection, table: str) -> list[str]:
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE p.relname = :table AND n.nspname = current_schema() ORDER BY 1"
        ),
        {"table": table},
    )
    return [r[0] for r in rows]
