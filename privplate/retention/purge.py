"""The retention purge: delete what is past its window, then destroy the keys of dead epochs.

One run, in order: expire legal holds; delete non-hit reads, hit reads and evidence past their
windows (never held ones); destroy every epoch key none of whose non-held reads remain
(crypto-shredding, which also rotates the KEK); make the deleted bytes leave the files (SQLite);
append one audit entry. Every step commits on its own, so a run killed at any point leaves a
consistent store that the next run completes. Only one runner at a time, across processes.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Table, and_, delete, func, not_, select, text
from sqlalchemy.engine import make_url

from privplate.deployment import Deployment
from privplate.retention.holds import active_hold, expire_holds
from privplate.retention.records import purge_records
from privplate.store.models import Epoch, Evidence, Read
from privplate.store.partitions import ensure_partitions_ahead, existing_partitions

_reads: Table = Read.__table__  # type: ignore[assignment]
_evidence: Table = Evidence.__table__  # type: ignore[assignment]
_epochs: Table = Epoch.__table__  # type: ignore[assignment]
_RUNNER_LOCK = 7451004
#: SQLite: keep each delete transaction (and so the write lock) near this long.
TARGET_LOCK_SECONDS = 0.05
MAX_LOCK_SECONDS = 0.1


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
    seconds: float = 0.0
    #: Wall time of each step (reads, evidence, keys, space), for benchmarks and logs.
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def reads_total(self) -> int:
        return sum(self.reads_deleted.values())


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


def _sqlite_delete(
    dep: Deployment, table: Table, where: ColumnElement[bool], report: PurgeReport
) -> int:
    """Delete in batches sized so each write transaction stays near TARGET_LOCK_SECONDS."""
    batch, total = 500, 0
    epoch_col = table.c.get("epoch_id")
    while True:
        started = time.perf_counter()
        with dep.db.write() as conn:
            columns = [text("rowid")] + ([epoch_col] if epoch_col is not None else [])
            rows = conn.execute(select(*columns).select_from(table).where(where).limit(batch)).all()
            if rows:
                conn.execute(
                    delete(table).where(text("rowid IN (SELECT value FROM json_each(:ids))")),
                    {"ids": "[" + ",".join(str(r[0]) for r in rows) + "]"},
                )
        held = time.perf_counter() - started
        report.longest_lock_ms = max(report.longest_lock_ms, held * 1000)
        if epoch_col is not None:
            report.reads_deleted.update(r[1] for r in rows)
        total += len(rows)
        if len(rows) < batch:
            return total
        # Adapt the batch so the lock is held about TARGET_LOCK_SECONDS.
        scale = TARGET_LOCK_SECONDS / max(held, 1e-4)
        batch = max(50, min(50_000, int(batch * min(2.0, max(0.25, scale)))))


def _sqlite_release_space(dep: Deployment, *, rebuild_indexes: bool) -> None:
    """Make purged bytes leave the database file and the WAL."""
    # On the driver connection, outside any transaction: both pragmas refuse to run inside one.
    raw = dep.db.engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None  # noqa: S101 - a pooled connection always has one
        # secure_delete zeroes deleted cells, but SQLite's page rebuild during a rebalance
        # leaves the gap between the cell pointers and the cell content unzeroed. Probing
        # (dbstat, 80 purges without a rebuild) found purged tokens only there, and only in
        # leaf pages of ix_reads_epoch_token, where an epoch's partly purged entries are
        # interleaved with live ones; rebuilding that index alone writes fresh pages and
        # frees (and zeroes) the old ones. It runs only when this purge deleted reads, and
        # holds the write lock for a time proportional to the table: about 1.1 s at 670k
        # remaining reads, against 2.3 s for REINDEX of the whole table.
        if rebuild_indexes:
            driver.executescript("REINDEX ix_reads_epoch_token;")
        # executescript steps the pragma to completion; execute() would free a single page.
        driver.executescript("PRAGMA incremental_vacuum;")
        # A reader elsewhere can make the checkpoint stop short (busy = 1); the purged pages
        # would then linger in the WAL, so retry briefly until it completes.
        for _attempt in range(50):
            busy = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                break
            time.sleep(0.05)
    finally:
        raw.close()


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
    # One transaction for all drops: DETACH locks the parent, so take that lock once.
    with dep.db.write() as conn:
        for name, day in old:
            # A partition with a hit still inside its window, or a held read, is not dropped;
            # its expired rows are deleted one by one in _pg_delete. Both checks use indexes.
            live_hit = conn.execute(
                text(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE is_hit AND observed_at >= :hit)"),
                {"hit": cut.hit},
            ).scalar_one()
            if live_hit or _held_in_day(conn, "read", day, now):
                continue
            counts = conn.execute(
                text(f"SELECT epoch_id, count(*) FROM {name} GROUP BY epoch_id")
            ).all()
            _drop_partition(conn, "reads", name)
            report.reads_deleted.update({epoch: n for epoch, n in counts})
            report.partitions_dropped.append(name)


def _pg_drop_evidence(dep: Deployment, cut: Cutoffs, now: datetime, report: PurgeReport) -> None:
    old = _old_partitions(dep, "evidence", cut.evidence)
    if not old:
        return
    with dep.db.write() as conn:
        for name, day in old:
            if _held_in_day(conn, "evidence", day, now):
                continue
            report.evidence_deleted += conn.execute(
                text(f"SELECT count(*) FROM {name}")
            ).scalar_one()
            _drop_partition(conn, "evidence", name)
            report.partitions_dropped.append(name)


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
            report.records_deleted = purge_records(dep, now)
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
            with _phase(report, "space"):
                _sqlite_release_space(dep, rebuild_indexes=report.reads_total > 0)
            report.seconds = time.perf_counter() - started
    return report
