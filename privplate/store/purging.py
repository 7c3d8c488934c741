"""How expired rows and their bytes leave each database; what expires is retention's.

SQLite: deletes in short batches under a lock budget, then the free pages go back to the file
system, the free space inside pages is zeroed and the WAL is emptied. PostgreSQL: whole day
partitions are detached and dropped. The purge (privplate.retention.purge) says which rows and
which partitions; nothing here knows about windows, hits or holds.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import ColumnElement, Connection, delete, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import QueryableAttribute

from privplate.errors import StoreError
from privplate.store.database import Database
from privplate.store.leadership import deployment_lock_key
from privplate.store.lock_budget import LockBudget
from privplate.store.models import Base, table_of
from privplate.store.partitions import existing_partitions
from privplate.store.scrub import DriverConnection, scrub_free_space

#: SQLite: keep each write transaction of the purge (and so the write lock) near this long,
#: so that with the variance of cold pages none exceeds about 100 ms.
TARGET_LOCK_SECONDS = 0.04
_WAL_AUTOCHECKPOINT = 1000  # SQLite's default, restored after the purge's batches


class LockLog(Protocol):
    """Where the steps report how long they held the write lock, and phases their time."""

    phases: dict[str, float]

    def held(self, step: str, seconds: float) -> None: ...


@contextmanager
def phase(log: LockLog, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        log.phases[name] = time.perf_counter() - started


# -- one runner at a time ----------------------------------------------------------------------


@contextmanager
def runner_lock(db: Database) -> Iterator[bool]:
    """Yield True if this process may purge now; False if another runner holds the lock."""
    if db.is_postgres:
        with db.engine.connect() as conn:
            # Per deployment: another deployment's purge on the same PostgreSQL is no runner
            # of ours.
            key = deployment_lock_key(conn, "purge-runner")
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        return
    path = Path(str(make_url(db.url).database) + ".purge-lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- SQLite: short batched deletes --------------------------------------------------------------


@contextmanager
def _checkpoints_between_batches(driver: DriverConnection) -> Iterator[Callable[[], object]]:
    """Yield a PASSIVE checkpoint to run between batches, with automatic ones off meanwhile.

    SQLite checkpoints inside whichever COMMIT finds the WAL over 1000 pages. During a purge
    that is nearly every batch, so its lock-hold figures would include checkpoint I/O, and an
    ingest committing at the wrong moment would pay for copying the purge's pages. Here the
    purge copies them itself, after each batch and outside the write lock.
    """
    driver.execute("PRAGMA wal_autocheckpoint=0")
    try:
        yield lambda: driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        driver.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT}")


def _driver(conn: Connection) -> DriverConnection:
    driver = conn.connection.driver_connection
    assert driver is not None  # noqa: S101 - a pooled connection always has one
    return driver  # type: ignore[no-any-return]


def sqlite_delete(
    db: Database,
    model: type[Base],
    where: ColumnElement[bool],
    log: LockLog,
    *,
    count_by: QueryableAttribute[int] | None = None,
) -> tuple[int, Counter[int]]:
    """Delete in batches sized so each write transaction stays near TARGET_LOCK_SECONDS.

    Each batch's rows are found in a read transaction first, which takes no lock; the delete
    then re-checks the condition under the lock, so a condition that stopped holding in between
    (a hold placed on a row) is respected. Returns the rows deleted and, with ``count_by``,
    their count per value of that column.
    """
    batch, total, counts = 500, 0, Counter[int]()
    table = table_of(model)
    with (
        db.write_connection() as conn,
        _checkpoints_between_batches(_driver(conn)) as checkpoint,
    ):
        budget = LockBudget(target=TARGET_LOCK_SECONDS, between=checkpoint)
        while True:
            with db.read() as lookup:
                ids = (
                    lookup.execute(
                        select(text("rowid")).select_from(table).where(where).limit(batch)
                    )
                    .scalars()
                    .all()
                )
            if not ids:
                return total, counts
            stmt = delete(table).where(text("rowid IN (SELECT value FROM json_each(:ids))"), where)
            with conn.begin():
                # From here on this transaction holds the lock (BEGIN IMMEDIATE waited for it).
                started = time.perf_counter()
                if count_by is not None:
                    values = (
                        conn.execute(stmt.returning(count_by), {"ids": json.dumps(ids)})
                        .scalars()
                        .all()
                    )
                    deleted = len(values)
                else:
                    deleted = conn.execute(stmt, {"ids": json.dumps(ids)}).rowcount
            held = time.perf_counter() - started
            log.held(f"delete:{table.name}", held)
            if count_by is not None:
                counts.update(values)
            total += deleted
            if len(ids) < batch:
                return total, counts
            batch = budget.done(batch, held, low=50, high=50_000)


def _sqlite_vacuum(
    driver: DriverConnection, log: LockLog, checkpoint: Callable[[], object]
) -> None:
    """Give free pages back to the file system, a few at a time so the lock stays short."""
    pages = 256
    budget = LockBudget(target=TARGET_LOCK_SECONDS, between=checkpoint)
    before: int | None = None
    while True:
        free = int(driver.execute("PRAGMA freelist_count").fetchone()[0])
        # Stop when nothing is left, or nothing moves: a file whose auto_vacuum is not
        # INCREMENTAL (made by another tool) ignores the pragma; its free pages are zeroed.
        if not free or (before is not None and free >= before):
            return
        before = free
        started = time.perf_counter()
        # The pragma returns a row per page it frees: fetch them all, or only one is freed.
        driver.execute(f"PRAGMA incremental_vacuum({min(pages, free)})").fetchall()
        held = time.perf_counter() - started
        log.held("vacuum", held)
        pages = budget.done(pages, held, low=16, high=100_000)


def _sqlite_checkpoint(driver: DriverConnection, log: LockLog) -> None:
    """Copy the WAL into the database, then empty it, holding writers off only briefly."""
    # PASSIVE copies what it can without blocking anyone; TRUNCATE then has little left to
    # copy. TRUNCATE blocks new writers while it waits for readers, so it waits 50 ms at most
    # per attempt (the connection's busy timeout would let it wait 30 s) and tries again.
    driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    driver.execute("PRAGMA busy_timeout=50")
    try:
        for _attempt in range(100):
            started = time.perf_counter()
            busy = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            log.held("checkpoint", time.perf_counter() - started)
            if not busy:
                return
            time.sleep(0.05)
        # Purged pages linger in the WAL until a later checkpoint completes; the next run
        # tries again (the scrub marker stays).
        raise StoreError("the WAL checkpoint stayed busy: a reader held an old snapshot")
    finally:
        driver.execute("PRAGMA busy_timeout=30000")


def sqlite_release_space(
    db: Database, log: LockLog, tables: frozenset[str] | None, scrub_token: str | None
) -> int:
    """Make deleted bytes leave the database file and the WAL: free pages go back to the file
    system, free space inside the pages of ``tables`` (all, if None) is zeroed, the WAL is
    emptied, and the scrub request ``scrub_token`` is cleared. Returns the pages zeroed."""
    # On the driver connection, outside any transaction: the pragmas refuse to run inside one.
    raw = db.engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None  # noqa: S101 - a pooled connection always has one
        with _checkpoints_between_batches(driver) as checkpoint:
            with phase(log, "vacuum"):
                _sqlite_vacuum(driver, log, checkpoint)
            # After the vacuum, which moves pages (with their free space) to fill freed slots.
            with phase(log, "scrub"):
                scrub = scrub_free_space(
                    driver,
                    LockBudget(target=TARGET_LOCK_SECONDS, between=checkpoint),
                    tables=tables,
                )
        log.held("scrub", scrub.longest_lock_ms / 1000)
        with phase(log, "checkpoint"):
            _sqlite_checkpoint(driver, log)
    finally:
        raw.close()
    db.clear_scrub(scrub_token)
    return scrub.pages_cleaned


# -- PostgreSQL: drop whole day partitions ------------------------------------------------------


def _partition_day(name: str) -> date | None:
    suffix = name.rsplit("_p", 1)[-1]
    try:
        return datetime.strptime(suffix, "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None


def old_partitions(db: Database, parent: str, cutoff: datetime) -> list[tuple[str, datetime]]:
    """(name, start of day) of the partitions of ``parent`` whose whole day is before ``cutoff``."""
    with db.read() as conn:
        names = existing_partitions(conn, parent)
    old = []
    for name in names:
        day = _partition_day(name)
        if day is None:
            continue
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if start + timedelta(days=1) <= cutoff:
            old.append((name, start))
    return old


def partition_counts(
    db: Database, names: Sequence[str], *, by: str | None = None
) -> dict[str, list[tuple[int, int]]]:
    """Rows per partition (per value of column ``by``, else under the key 0), counted without
    any lock so ingest goes on."""
    query = f"SELECT {by}, count(*) FROM {{}} GROUP BY {by}" if by else "SELECT 0, count(*) FROM {}"
    with db.read() as conn:
        return {
            name: [(int(k), int(n)) for k, n in conn.execute(text(query.format(name))).all()]
            for name in names
        }


def drop_partitions(
    db: Database,
    parent: str,
    old: Sequence[tuple[str, datetime]],
    keep: Callable[[Connection, str, datetime], bool],
    log: LockLog,
) -> list[str]:
    """Detach and drop each partition of ``old`` for which ``keep(conn, name, day)`` is false;
    returns the names dropped.

    One transaction for all drops: DETACH locks the parent, so take that lock once. Taken
    first, so no row can arrive between ``keep``'s checks and the drop; and in the mode DETACH
    needs, because upgrading a weaker lock could deadlock with an ingest that read before it
    inserts.
    """
    if not old:
        return []
    dropped = []
    started = time.perf_counter()
    with db.write() as conn:
        # DROP TABLE also takes an ACCESS EXCLUSIVE lock on every table the partition's
        # foreign keys point at (cameras): an ingest holds a lock there from its camera check
        # before it reads the parent, so the referenced tables are locked first, in that order
        # (found under load: the other order deadlocked with concurrent ingests).
        referenced = list(
            conn.execute(
                text(
                    "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint "
                    "WHERE conrelid = CAST(:parent AS regclass) AND contype = 'f' "
                    "AND confrelid <> conrelid ORDER BY 1"
                ),
                {"parent": parent},
            ).scalars()
        )
        tables = ", ".join([*referenced, parent])
        conn.execute(text(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE"))
        for name, day in old:
            if keep(conn, name, day):
                continue
            conn.execute(text(f"ALTER TABLE {parent} DETACH PARTITION {name}"))
            conn.execute(text(f"DROP TABLE {name}"))
            dropped.append(name)
    log.held(f"detach:{parent}", time.perf_counter() - started)
    return dropped
