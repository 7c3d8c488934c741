"""The retention purge: delete what is past its window, then destroy the keys of dead epochs.

One run, in order: expire legal holds; delete non-hit reads, hit reads and evidence past their
windows (never held ones); destroy every epoch key none of whose non-held reads remain
(crypto-shredding, which also rotates the KEK); make the deleted bytes leave the files (SQLite);
append one audit entry. Every step commits on its own, so a run killed at any point leaves a
consistent store that the next run completes. Only one runner at a time, across processes.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, delete, func, not_, select, text

from privplate.retention.holds import HoldKind, active_hold, expire_holds
from privplate.retention.records import Remover, purge_records
from privplate.retention.scope import RetentionRules, RetentionScope
from privplate.store.models import Base, Epoch, Evidence, Read
from privplate.store.partitions import ensure_partitions_ahead
from privplate.store.purging import (
    drop_partitions,
    old_partitions,
    partition_counts,
    phase,
    runner_lock,
    sqlite_delete,
    sqlite_release_space,
)


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
    def for_rules(cls, rules: RetentionRules, now: datetime) -> Cutoffs:
        return cls(
            non_hit=now - rules.window("non_hit_reads"),
            hit=now - rules.window("hit_reads"),
            evidence=now - rules.window("evidence"),
        )


# -- selection ----------------------------------------------------------------------------------


def _expired_reads(cut: Cutoffs, now: datetime) -> list[ColumnElement[bool]]:
    not_held = not_(active_hold(HoldKind.READ, Read.read_id, now))
    return [
        and_(Read.is_hit.is_(False), Read.observed_at < cut.non_hit, not_held),
        and_(Read.is_hit.is_(True), Read.observed_at < cut.hit, not_held),
    ]


def _expired_evidence(cut: Cutoffs, now: datetime) -> ColumnElement[bool]:
    return and_(
        Evidence.observed_at < cut.evidence,
        not_(active_hold(HoldKind.EVIDENCE, Evidence.id, now)),
    )


# -- deleting ---------------------------------------------------------------------------------


def _remover(scope: RetentionScope, report: PurgeReport) -> Remover:
    def remove(model: type[Base], where: ColumnElement[bool]) -> int:
        if scope.db.is_sqlite:
            return sqlite_delete(scope.db, model, where, report)[0]
        with scope.db.write() as conn:
            return int(conn.execute(delete(model).where(where)).rowcount)

    return remove


#: Scrubbed whenever the scrub runs: small tables whose rows other code deletes or rewrites
#: between purges (hotlist entries and tokens, unseal requests' release keys, partials).
_ALWAYS_SCRUBBED = frozenset(
    {"hotlist_entries", "hotlist_tokens", "unseal_requests", "unseal_approvals"}
)
#: records_deleted keys that are not table names.
_RECORD_TABLES = {
    "unseal_release_keys": "unseal_requests",
    "search_approval_plates": "search_approvals",
}


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


# -- PostgreSQL: drop whole partitions, delete only in the boundary ones ------------------------


_HELD_IN_DAY = text(
    "SELECT EXISTS (SELECT 1 FROM legal_holds WHERE target_kind = :kind AND approved_at IS NOT "
    "NULL AND released_at IS NULL AND expires_at > :now AND target_observed_at >= :start AND "
    "target_observed_at < :end)"
)


def _held_in_day(conn: Connection, kind: HoldKind, day: datetime, now: datetime) -> bool:
    """Whether an active hold covers an item observed that day (no partition scan)."""
    return bool(
        conn.execute(
            _HELD_IN_DAY,
            {"kind": kind, "now": now, "start": day, "end": day + timedelta(days=1)},
        ).scalar_one()
    )


def _pg_drop_reads(scope: RetentionScope, cut: Cutoffs, now: datetime, report: PurgeReport) -> None:
    old = old_partitions(scope.db, "reads", cut.non_hit)
    if not old:
        return
    # Count before taking any lock: DETACH holds an ACCESS EXCLUSIVE lock on the parent, which
    # stops ingest, until the transaction ends. The counts cannot go stale for a partition
    # that is then dropped: ingest refuses reads past their window, and a late hit still in its
    # window makes the partition keep its rows (the live-hit check below, under the lock).
    counts = partition_counts(scope.db, [name for name, _ in old], by="epoch_id")

    def keep(conn: Connection, name: str, day: datetime) -> bool:
        # A partition with a hit still inside its window, or a held read, is not dropped;
        # its expired rows are deleted one by one in _pg_delete. Both checks use indexes.
        live_hit = conn.execute(
            text(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE is_hit AND observed_at >= :hit)"),
            {"hit": cut.hit},
        ).scalar_one()
        return bool(live_hit) or _held_in_day(conn, HoldKind.READ, day, now)

    for name in drop_partitions(scope.db, "reads", old, keep, report):
        report.reads_deleted.update(dict(counts[name]))
        report.partitions_dropped.append(name)


def _pg_drop_evidence(
    scope: RetentionScope, cut: Cutoffs, now: datetime, report: PurgeReport
) -> None:
    old = old_partitions(scope.db, "evidence", cut.evidence)
    if not old:
        return
    # Counted before the lock, as for reads (ingest refuses evidence past its window).
    counts = partition_counts(scope.db, [name for name, _ in old])

    def keep(conn: Connection, _name: str, day: datetime) -> bool:
        return _held_in_day(conn, HoldKind.EVIDENCE, day, now)

    for name in drop_partitions(scope.db, "evidence", old, keep, report):
        report.evidence_deleted += sum(n for _, n in counts[name])
        report.partitions_dropped.append(name)


def _pg_delete(scope: RetentionScope, cut: Cutoffs, now: datetime, report: PurgeReport) -> None:
    with scope.db.write() as conn:
        for where in _expired_reads(cut, now):
            deleted = conn.execute(delete(Read).where(where).returning(Read.epoch_id))
            report.reads_deleted.update(r[0] for r in deleted)
        report.evidence_deleted += conn.execute(
            delete(Evidence).where(_expired_evidence(cut, now))
        ).rowcount
        ensure_partitions_ahead(conn, now=now)
    scope.db.forget_partitions()


# -- crypto-shredding ---------------------------------------------------------------------------


def _dead_epochs(scope: RetentionScope, cut: Cutoffs, now: datetime) -> list[int]:
    """Live epochs that ended before the non-hit window and keep no non-held read."""
    with scope.db.read() as conn:
        candidates = [
            r[0]
            for r in conn.execute(
                select(Epoch.id).where(Epoch.ends_at <= cut.non_hit, Epoch.wrapped_key.is_not(None))
            )
        ]
        if not candidates:
            return []
        remaining = {
            r[0]
            for r in conn.execute(
                select(Read.epoch_id)
                .where(
                    Read.epoch_id.in_(candidates),
                    not_(active_hold(HoldKind.READ, Read.read_id, now)),
                )
                .distinct()
            )
        }
    return [e for e in candidates if e not in remaining]


def oldest_remaining_read(scope: RetentionScope, now: datetime | None = None) -> datetime | None:
    """Observation time of the oldest read that is not under a legal hold."""
    now = now or datetime.now(UTC)
    with scope.db.read() as conn:
        return conn.execute(
            select(func.min(Read.observed_at)).where(
                not_(active_hold(HoldKind.READ, Read.read_id, now))
            )
        ).scalar()


# -- the run ------------------------------------------------------------------------------------


def _dry_run(
    scope: RetentionScope, cut: Cutoffs, now: datetime, report: PurgeReport
) -> PurgeReport:
    with scope.db.read() as conn:
        for where in _expired_reads(cut, now):
            for epoch, n in conn.execute(
                select(Read.epoch_id, func.count()).where(where).group_by(Read.epoch_id)
            ):
                report.reads_deleted[epoch] += n
        report.evidence_deleted = conn.execute(
            select(func.count()).select_from(Evidence).where(_expired_evidence(cut, now))
        ).scalar_one()
        # The oldest read that would survive: not held and matching no expiry condition.
        survivors = [not_(where) for where in _expired_reads(cut, now)]
        report.oldest_remaining_read = conn.execute(
            select(func.min(Read.observed_at)).where(
                *survivors, not_(active_hold(HoldKind.READ, Read.read_id, now))
            )
        ).scalar()
    return report


def purge(
    scope: RetentionScope, *, now: datetime | None = None, dry_run: bool = False
) -> PurgeReport:
    """Run one retention purge. ``now`` is injectable so tests can drive a fake clock."""
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    report = PurgeReport(started_at=now, dry_run=dry_run)
    cut = Cutoffs.for_rules(scope.rules, now)
    if dry_run:
        return _dry_run(scope, cut, now, report)
    with runner_lock(scope.db) as acquired:
        if not acquired:
            report.skipped = True
            return report
        # Which process purged and from when (wall clock; the entry's own time is the end):
        # with several servers, the audit log shows one run at a time.
        runner = {
            "runner": f"{socket.gethostname()}/{os.getpid()}",
            "run_started_at": datetime.now(UTC).isoformat(),
        }
        # A marker left by a run that deleted but did not finish zeroing makes this run do it.
        scrub_pending = scope.db.is_sqlite and scope.db.scrub_marker.exists()
        # Cleared at the end of the run, once the zeroing is done (unless asked again meanwhile).
        scrub_token = scope.db.request_scrub()
        with scope.db.write() as conn:
            report.holds_expired = expire_holds(conn, scope.audit, actor=scope.actor, now=now)
        with phase(report, "reads"):
            if scope.db.is_postgres:
                _pg_drop_reads(scope, cut, now, report)
            else:
                for where in _expired_reads(cut, now):
                    _, per_epoch = sqlite_delete(
                        scope.db, Read, where, report, count_by=Read.epoch_id
                    )
                    report.reads_deleted.update(per_epoch)
        with phase(report, "evidence"):
            if scope.db.is_postgres:
                _pg_drop_evidence(scope, cut, now, report)
                _pg_delete(scope, cut, now, report)  # boundary rows of reads and evidence
            else:
                report.evidence_deleted += sqlite_delete(
                    scope.db, Evidence, _expired_evidence(cut, now), report
                )[0]
        with phase(report, "records"):
            report.records_deleted = purge_records(scope, now, _remover(scope, report))
        with phase(report, "keys"):
            report.epochs_destroyed = scope.keyring.destroy_epochs(
                _dead_epochs(scope, cut, now), now=now
            )
        report.oldest_remaining_read = oldest_remaining_read(scope, now)
        report.seconds = time.perf_counter() - started
        scope.audit.record(
            actor=scope.actor,
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
                "preset": scope.rules.preset,
                **runner,
            },
        )
        if scope.db.is_sqlite:
            # Last, so no later write in this run brings purged pages back into the WAL.
            if scrub_pending or report.deleted_anything:
                # A marker left by an earlier run: it is not known what that run deleted.
                tables = _scrubbed_tables(report, everything=scrub_pending)
                with phase(report, "space"):
                    report.pages_scrubbed = sqlite_release_space(
                        scope.db, report, tables, scrub_token
                    )
            else:
                scope.db.clear_scrub(scrub_token)
            report.seconds = time.perf_counter() - started
    return report
