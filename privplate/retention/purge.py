"""The retention purge: delete what is past its window, then destroy the keys of dead epochs.

One run, in order: expire legal holds; delete non-hit reads, hit reads and evidence past their
windows (never held ones); destroy every epoch key none of whose non-held reads remain
(crypto-shredding, which also rotates the KEK); make the deleted bytes leave the files (SQLite);
append one audit entry. Every step commits on its own, so a run killed at any point leaves a
consistent store that the next run completes. Only one runner at a time, across processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, func, not_, select, text
from sqlalchemy.engine import make_url

from privplate.deployment import Deployment
from privplate.errors import StoreError
from privplate.retention.holds import active_hold, expire_holds
from privplate.retention.records import Remover, purge_records
from privplate.store.lock_budget import LockBudget
from privplate.store.models import Epoch, Evidence, Read
from privplate.store.partitions import ensure_partitions_ahead, existing_partitions
from privplate.store.scrub import DriverConnection, scrub_free_space

_reads: Table = Read.__table__  # type: ignore[assignment]
_evidence: Table = Evidence.__table__  # type: ignore[assignment]
_epochs: Table = Epoch.__table__  # type: ignore[assignment]
_RUNNER_LOCK = 7451004
#: SQLite: keep each write transaction of the purge (and so the write lock) near this long,
#: so that with the variance of cold pages none exceeds about 100 ms.
TARGET_LOCK_SECONDS = 0.04
_WAL_AUTOCHECKPOINT = 1000  # SQLite's default, restored after the purge's batches


@dataclass
class PurgeReport:
    started_at: datetime
    dry_run: bool = False
    skipped: bool = False
    reads_deleted: Counter[int] = field(default_factory=Counter)  # rows per epoch id
    evidence_deleted: int = 0
    holds_expired: int = 0
    #: Server records deleted, per table (hotlist entries, alerts, nonces, sessions, ...).
    records_deleted: dict[str, int] = field(default_factory=dict)
    epochs_destroyed: list[int] = field(default_factory=list)
    partitions_dropped: list[str] = field(default_factory=list)
    oldest_remaining_read: datetime | None = None
    longest_lock_ms: float = 0.0
    #: SQLite: the longest write-lock hold of each step (delete:reads, vacuum, scrub, ...).
    lock_ms: dict[str, float] = field(default_factory=dict)
    #: SQLite: pages whose free space held leftover bytes and was zeroed.
    pages_scrubbed: int = 0
    seconds: float = 0.0
    #: Wall time of each step (reads, evidence, keys, space), for benchmarks and logs.
    phases: dict[str, float] = field(default_factory=dict)

    def held(self, step: str, seconds: float) -> None:
        ms = seconds * 1000
        self.lock_ms[step] = max(self.lock_ms.get(step, 0.0), ms)
        self.longest_lock_ms = max(self.longest_lock_ms, ms)

    @property
    def reads_total(self) -> int:
        return sum(self.reads_deleted.values())

    @property
    def deleted_anything(self) -> bool:
        return bool(
            self.reads_total
            or self.evidence_deleted
            or any(self.records_deleted.values())
            or self.epochs_destroyed
        )


@dataclass(frozen=True)
class Cutoffs:
    non_hit: datetime
    hit: datetime
    evidence: datetime

    @classmethod
    def for_deployment(cls, dep: Deployment, now: datetime) -> Cutoffs:
        s = dep.settings
        return cls(
            non_hit=now - s.retention_window("non_hit_reads"),
            hit=now - s.retention_window("hit_reads"),
            evidence=now - s.retention_window("evidence"),
        )


# -- one runner at a time ----------------------------------------------------------------------


@contextmanager
def runner_lock(dep: Deployment) -> Iterator[bool]:
    """Yield True if this process may purge now; False if another runner holds the lock."""
    if dep.db.is_postgres:
        with dep.db.engine.connect() as conn:
            got = bool(conn.execute(text(f"SELECT pg_try_advisory_lock({_RUNNER_LOCK})")).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text(f"SELECT pg_advisory_unlock({_RUNNER_LOCK})"))
                    conn.commit()
        return
    path = Path(str(make_url(dep.db.url).database) + ".purge-lock")
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


# -- selection ----------------------------------------------------------------------------------


def _expired_reads(cut: Cutoffs, now: datetime) -> list[ColumnElement[bool]]:
    not_held = not_(active_hold("read", _reads.c.read_id, now))
    return [
        and_(_reads.c.is_hit.is_(False), _reads.c.observed_at < cut.non_hit, not_held),
        and_(_reads.c.is_hit.is_(True), _reads.c.observed_at < cut.hit, not_held),
    ]


def _expired_evidence(cut: Cutoffs, now: datetime) -> ColumnElement[bool]:
    return and_(
        _evidence.c.observed_at < cut.evidence,
        not_(active_hold("evidence", _evidence.c.id, now)),
    )


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


def _sqlite_delete(
    dep: Deployment, table: Table, where: ColumnElement[bool], report: PurgeReport
) -> int:
    """Delete in batches sized so each write transaction stays near TARGET_LOCK_SECONDS.

    Each batch's rows are found in a read transaction first, which takes no lock; the delete
    then re-checks the condition under the lock, so a hold placed in between is respected.
    """
    batch, total = 500, 0
    # Reads are counted per epoch for the audit entry; other tables only in total.
    epoch_col = table.c.epoch_id if table is _reads else None
    with (
        dep.db.write_connection() as conn,
        _checkpoints_between_batches(_driver(conn)) as checkpoint,
    ):
        budget = LockBudget(target=TARGET_LOCK_SECONDS, between=checkpoint)
        while True:
            with dep.db.read() as lookup:
                ids = (
                    lookup.execute(
                        select(text("rowid")).select_from(table).where(where).limit(batch)
                    )
                    .scalars()
                    .all()
                )
            if not ids:
                return total
            stmt = delete(table).where(text("rowid IN (SELECT value FROM json_each(:ids))"), where)
            with conn.begin():
                # From here on this transaction holds the lock (BEGIN IMMEDIATE waited for it).
                started = time.perf_counter()
                if epoch_col is not None:
                    epochs = (
                        conn.execute(stmt.returning(epoch_col), {"ids": json.dumps(ids)})
                        .scalars()
                        .all()
                    )
                    deleted = len(epochs)
                else:
                    deleted = conn.execute(stmt, {"ids": json.dumps(ids)}).rowcount
            held = time.perf_counter() - started
            report.held(f"delete:{table.name}", held)
            if epoch_col is not None:
                report.reads_deleted.update(epochs)
            total += deleted
            if len(ids) < batch:
                return total
            batch = budget.done(batch, held, low=50, high=50_000)


def _remover(dep: Deployment, report: PurgeReport) -> Remover:
    def remove(table: Table, where: ColumnElement[bool]) -> int:
        if dep.db.is_sqlite:
            return _sqlite_delete(dep, table, where, report)
        with dep.db.write() as conn:
            return int(conn.execute(delete(table).where(where)).rowcount)

    return remove


def _sqlite_vacuum(
    driver: DriverConnection, report: PurgeReport, checkpoint: Callable[[], object]
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
        report.held("vacuum", held)
        pages = budget.done(pages, held, low=16, high=100_000)


def _sqlite_checkpoint(driver: DriverConnection, report: PurgeReport) -> None:
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
            report.held("checkpoint", time.perf_counter() - started)
            if not busy:
                return
            time.sleep(0.05)
        # Purged pages linger in the WAL until a later checkpoint completes; the next run
        # tries again (the scrub marker stays).
        raise StoreError("the WAL checkpoint stayed busy: a reader held an old snapshot")
    finally:
        driver.execute("PRAGMA busy_timeout=30000")


#: Scrubbed whenever the scrub runs: small tables whose rows other code deletes or rewrites
#: between purges (hotlist entries and tokens, unseal requests' release keys, partials).
_ALWAYS_SCRUBBED = frozenset(
    {"hotlist_entries", "hotlist_tokens", "unseal_requests", "unseal_approvals"}
)
#: records_deleted keys that are not table names.
_RECORD_TABLES = {"unseal_release_keys": "unseal_requests"}


def _scrubbed_tables(report: PurgeReport, *, everything: bool) -> frozenset[str] | None:
    """The tables this run deleted from (a leftover copy stays in its own table's pages)."""
    if everything:
        return None
    tables = set(_ALWAYS_SCRUBBED)
    if report.reads_total:
        tables.add("reads")
    if report.evidence_deleted:
        tables.add("evidence")
    if report.epochs_destroyed:
        tables.add("epochs")
    tables |= {_RECORD_TABLES.get(k, k) for k, n in report.records_deleted.items() if n}
    return frozenset(tables)


def _sqlite_release_space(
    dep: Deployment, report: PurgeReport, tables: frozenset[str] | None
) -> None:
    """Make deleted bytes leave the database file and the WAL."""
    # On the driver connection, outside any transaction: the pragmas refuse to run inside one.
    raw = dep.db.engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None  # noqa: S101 - a pooled connection always has one
        with _checkpoints_between_batches(driver) as checkpoint:
            with _phase(report, "vacuum"):
                _sqlite_vacuum(driver, report, checkpoint)
            # After the vacuum, which moves pages (with their free space) to fill freed slots.
            with _phase(report, "scrub"):
                scrub = scrub_free_space(
                    driver,
                    LockBudget(target=TARGET_LOCK_SECONDS, between=checkpoint),
                    tables=tables,
                )
        report.pages_scrubbed = scrub.pages_cleaned
        report.held("scrub", scrub.longest_lock_ms / 1000)
        with _phase(report, "checkpoint"):
            _sqlite_checkpoint(driver, report)
    finally:
        raw.close()
    dep.db.scrub_marker.unlink(missing_ok=True)


# -- PostgreSQL: drop whole partitions, delete only in the boundary ones ------------------------


def _partition_day(name: str) -> date | None:
    suffix = name.rsplit("_p", 1)[-1]
    try:
        return datetime.strptime(suffix, "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None


def _drop_partition(conn: Connection, parent: str, name: str) -> None:
    conn.execute(text(f"ALTER TABLE {parent} DETACH PARTITION {name}"))
    conn.execute(text(f"DROP TABLE {name}"))


_HELD_IN_DAY = text(
    "SELECT EXISTS (SELECT 1 FROM legal_holds WHERE target_kind = :kind AND approved_at IS NOT "
    "NULL AND released_at IS NULL AND expires_at > :now AND target_observed_at >= :start AND "
    "target_observed_at < :end)"
)


def _held_in_day(conn: Connection, kind: str, day: datetime, now: datetime) -> bool:
    """Whether an active hold covers an item observed that day (no partition scan)."""
    return bool(
        conn.execute(
            _HELD_IN_DAY,
            {"kind": kind, "now": now, "start": day, "end": day + timedelta(days=1)},
        ).scalar_one()
    )


def _old_partitions(dep: Deployment, parent: str, cutoff: datetime) -> list[tuple[str, datetime]]:
    """(name, start of day) of the partitions of ``parent`` whose whole day is before ``cutoff``."""
    with dep.db.read() as conn:
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


def _pg_drop_reads(dep: Deployment, cut: Cutoffs, now: datetime, report: PurgeReport) -> None:
    old = _old_partitions(dep, "reads", cut.non_hit)
    if not old:
        return
    # Count before taking any lock: DETACH holds an ACCESS EXCLUSIVE lock on the parent, which
    # stops ingest, until the transaction ends. The counts cannot go stale for a partition
    # that is then dropped: ingest refuses reads past their window, and a late hit still in its
    # window makes the partition keep its rows (the live-hit check below, under the lock).
    with dep.db.read() as conn:
        counts = {
            name: conn.execute(
                text(f"SELECT epoch_id, count(*) FROM {name} GROUP BY epoch_id")
            ).all()
            for name, _day in old
        }
    started = time.perf_counter()
    # One transaction for all drops: DETACH locks the parent, so take that lock once. Taken
    # first, so no read can arrive between the checks below and the drop; and in the mode
    # DETACH needs, because upgrading a weaker lock could deadlock with an ingest that read
    # before it inserts.
    with dep.db.write() as conn:
        conn.execute(text("LOCK TABLE reads IN ACCESS EXCLUSIVE MODE"))
        for name, day in old:
            # A partition with a hit still inside its window, or a held read, is not dropped;
            # its expired rows are deleted one by one in _pg_delete. Both checks use indexes.
            live_hit = conn.execute(
                text(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE is_hit AND observed_at >= :hit)"),
                {"hit": cut.hit},
            ).scalar_one()
            if live_hit or _held_in_day(conn, "read", day, now):
                continue
            _drop_partition(conn, "reads", name)
            report.reads_deleted.update({epoch: n for epoch, n in counts[name]})
            report.partitions_dropped.append(name)
    report.held("detach:reads", time.perf_counter() - started)


def _pg_drop_evidence(dep: Deployment, cut: Cutoffs, now: datetime, report: PurgeReport) -> None:
    old = _old_partitions(dep, "evidence", cut.evidence)
    if not old:
        return
    # Counted before the lock, as for reads (ingest refuses evidence past its window).
    with dep.db.read() as conn:
        counts = {
            name: int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
            for name, _day in old
        }
    started = time.perf_counter()
    with dep.db.write() as conn:
        conn.execute(text("LOCK TABLE evidence IN ACCESS EXCLUSIVE MODE"))
        for name, day in old:
            if _held_in_day(conn, "evidence", day, now):
                continue
            _drop_partition(conn, "evidence", name)
            report.evidence_deleted += counts[name]
            report.partitions_dropped.append(name)
    report.held("detach:evidence", time.perf_counter() - started)


def _pg_delete(dep: Deployment, cut: Cutoffs, now: datetime, report: PurgeReport) -> None:
    with dep.db.write() as conn:
        for where in _expired_reads(cut, now):
            deleted = conn.execute(delete(_reads).where(where).returning(_reads.c.epoch_id))
            report.reads_deleted.update(r[0] for r in deleted)
        report.evidence_deleted += conn.execute(
            delete(_evidence).where(_expired_evidence(cut, now))
        ).rowcount
        ensure_partitions_ahead(conn, now=now)
    dep.db.forget_partitions()


# -- crypto-shredding ---------------------------------------------------------------------------


def _dead_epochs(dep: Deployment, cut: Cutoffs, now: datetime) -> list[int]:
    """Live epochs that ended before the non-hit window and keep no non-held read."""
    with dep.db.read() as conn:
        candidates = [
            r[0]
            for r in conn.execute(
                select(_epochs.c.id).where(
                    _epochs.c.ends_at <= cut.non_hit, _epochs.c.wrapped_key.is_not(None)
                )
            )
        ]
        if not candidates:
            return []
        remaining = {
            r[0]
            for r in conn.execute(
                select(_reads.c.epoch_id)
                .where(
                    _reads.c.epoch_id.in_(candidates),
                    not_(active_hold("read", _reads.c.read_id, now)),
                )
                .distinct()
            )
        }
    return [e for e in candidates if e not in remaining]


def oldest_remaining_read(dep: Deployment, now: datetime | None = None) -> datetime | None:
    """Observation time of the oldest read that is not under a legal hold."""
    now = now or datetime.now(UTC)
    with dep.db.read() as conn:
        return conn.execute(
            select(func.min(_reads.c.observed_at)).where(
                not_(active_hold("read", _reads.c.read_id, now))
            )
        ).scalar()


# -- the run ------------------------------------------------------------------------------------


def _dry_run(dep: Deployment, cut: Cutoffs, now: datetime, report: PurgeReport) -> PurgeReport:
    with dep.db.read() as conn:
        for where in _expired_reads(cut, now):
            for epoch, n in conn.execute(
                select(_reads.c.epoch_id, func.count()).where(where).group_by(_reads.c.epoch_id)
            ):
                report.reads_deleted[epoch] += n
        report.evidence_deleted = conn.execute(
            select(func.count()).select_from(_evidence).where(_expired_evidence(cut, now))
        ).scalar_one()
        # The oldest read that would survive: not held and matching no expiry condition.
        survivors = [not_(where) for where in _expired_reads(cut, now)]
        report.oldest_remaining_read = conn.execute(
            select(func.min(_reads.c.observed_at)).where(
                *survivors, not_(active_hold("read", _reads.c.read_id, now))
            )
        ).scalar()
    return report


@contextmanager
def _phase(report: PurgeReport, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        report.phases[name] = time.perf_counter() - started


def purge(dep: Deployment, *, now: datetime | None = None, dry_run: bool = False) -> PurgeReport:
    """Run one retention purge. ``now`` is injectable so tests can drive a fake clock."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    report = PurgeReport(started_at=now, dry_run=dry_run)
    cut = Cutoffs.for_deployment(dep, now)
    if dry_run:
        return _dry_run(dep, cut, now, report)
    with runner_lock(dep) as acquired:
        if not acquired:
            report.skipped = True
            return report
        # A marker left by a run that deleted but did not finish zeroing makes this run do it.
        scrub_pending = dep.db.is_sqlite and dep.db.scrub_marker.exists()
        dep.db.request_scrub()  # cleared at the end of the run, once the zeroing is done
        with dep.db.write() as conn:
            report.holds_expired = expire_holds(conn, dep.audit, actor=dep.actor, now=now)
        with _phase(report, "reads"):
            if dep.db.is_postgres:
                _pg_drop_reads(dep, cut, now, report)
            else:
                for where in _expired_reads(cut, now):
                    _sqlite_delete(dep, _reads, where, report)
        with _phase(report, "evidence"):
            if dep.db.is_postgres:
                _pg_drop_evidence(dep, cut, now, report)
                _pg_delete(dep, cut, now, report)  # boundary rows of reads and evidence
            else:
                report.evidence_deleted += _sqlite_delete(
                    dep, _evidence, _expired_evidence(cut, now), report
                )
        with _phase(report, "records"):
            report.records_deleted = purge_records(dep, now, _remover(dep, report))
        with _phase(report, "keys"):
            report.epochs_destroyed = dep.keyring.destroy_epochs(
                _dead_epochs(dep, cut, now), now=now
            )
        report.oldest_remaining_read = oldest_remaining_read(dep, now)
        report.seconds = time.perf_counter() - started
        dep.audit.record(
            actor=dep.actor,
            action="retention.purged",
            details={
                "reads_deleted_per_epoch": {
                    str(k): v for k, v in sorted(report.reads_deleted.items())
                },
                "evidence_deleted": report.evidence_deleted,
                "holds_expired": report.holds_expired,
                "records_deleted": report.records_deleted,
                "epochs_destroyed": report.epochs_destroyed,
                "partitions_dropped": report.partitions_dropped,
                "oldest_remaining_read": report.oldest_remaining_read.isoformat()
                if report.oldest_remaining_read
                else None,
                "preset": dep.settings.retention.preset,
            },
        )
        if dep.db.is_sqlite:
            # Last, so no later write in this run brings purged pages back into the WAL.
            if scrub_pending or report.deleted_anything:
                # A marker left by an earlier run: it is not known what that run deleted.
                tables = _scrubbed_tables(report, everything=scrub_pending)
                with _phase(report, "space"):
                    _sqlite_release_space(dep, report, tables)
            else:
                dep.db.scrub_marker.unlink(missing_ok=True)
            report.seconds = time.perf_counter() - started
    return report
