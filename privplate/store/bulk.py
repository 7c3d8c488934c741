"""Driver-level bulk insert of read rows: the ingest hot path.

SQLAlchemy's per-row type processing costs more than SQLite's own insert, so rows are converted
once here to exactly what the column types would have written and handed to the driver:
``executemany`` on SQLite, ``COPY`` on PostgreSQL. Both run inside the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection

COLUMNS = (
    "read_id",
    "token",
    "observed_at",
    "epoch_id",
    "is_alternate",
    "is_hit",
    "camera_id",
    "expires_at",
    "confidence",
    "evidence_id",
)
ReadRow = tuple[uuid.UUID, bytes, datetime, int, bool, bool, str, datetime, float, uuid.UUID | None]

_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO reads ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)
_PG_COPY = f"COPY reads ({', '.join(COLUMNS)}) FROM STDIN"


def _sqlite_time(moment: datetime) -> str:
    # The format SQLAlchemy's DateTime uses on SQLite (naive UTC, always 6 fraction digits).
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def insert_reads_sqlite(conn: Connection, rows: Sequence[ReadRow]) -> None:
    times: dict[datetime, str] = {}  # a read's alternates share its timestamps

    def text(moment: datetime) -> str:
        found = times.get(moment)
        if found is None:
            found = times[moment] = _sqlite_time(moment)
        return found

    converted = [
        (
            r[0].hex,
            r[1],
            text(r[2]),
            r[3],
            int(r[4]),
            int(r[5]),
            r[6],
            text(r[7]),
            r[8],
            r[9].hex if r[9] is not None else None,
        )
        for r in rows
    ]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_SQLITE_INSERT, converted)
    finally:
        cursor.close()


def copy_reads_postgres(conn: Connection, rows: Sequence[ReadRow]) -> None:
    """COPY the rows; raises the driver's error on any conflict (the caller falls back)."""
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(_PG_COPY) as copy:
        for row in rows:
            copy.write_row(row)


_SQLITE_EXISTS = "SELECT 1 FROM reads WHERE observed_at = ? AND read_id = ? LIMIT 1"
_PG_EXISTING = (
    "SELECT DISTINCT r.read_id FROM unnest(%s::timestamptz[], %s::uuid[]) AS k(observed_at, "
    "read_id) JOIN reads r ON r.observed_at = k.observed_at AND r.read_id = k.read_id"
)


class _Keyed(Protocol):
    @property
    def read_id(self) -> uuid.UUID: ...

    @property
    def observed_at(self) -> datetime: ...


def stored_read_ids(conn: Connection, db: Any, reads: Sequence[_Keyed]) -> set[uuid.UUID]:
    """Which of ``reads`` are already stored, by exact primary-key prefix (time, id).

    One index probe per read: a batch spread over weeks (a late upload) costs the same as a
    batch from the last minute, unlike an IN-list bounded by the batch's time span.
    """
    if not reads:
        return set()
    driver: Any = conn.connection.driver_connection
    if db.is_postgres:
        with driver.cursor() as cursor:
            cursor.execute(
                _PG_EXISTING, ([r.observed_at for r in reads], [r.read_id for r in reads])
            )
            return {row[0] for row in cursor.fetchall()}
    cursor = driver.cursor()
    try:
        return {
            r.read_id
            for r in reads
            if cursor.execute(
                _SQLITE_EXISTS, (_sqlite_time(r.observed_at), r.read_id.hex)
            ).fetchone()
            is not None
        }
    finally:
        cursor.close()
