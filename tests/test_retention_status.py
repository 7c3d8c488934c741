"""The retention promise's "oldest item" skips held items and counts hits apart, with the
oldest found by index order (benchmarks/console.py: the operator dashboard shows it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from privplate.deployment import Deployment
from privplate.retention.holds import HoldKind, approve_hold, request_hold
from privplate.retention.status import retention_status
from tests import factories


def _hold(dep: Deployment, kind: HoldKind, target: object) -> None:
    info = request_hold(
        db=dep.db,
        audit=dep.audit,
        kind=kind,
        target_id=target,  # type: ignore[arg-type]
        case_number="CASE-1",
        justification="hit-and-run investigation",
        requested_by="investigator:alice",
        duration=timedelta(days=90),
    )
    approve_hold(db=dep.db, audit=dep.audit, hold_id=info.id, approved_by="supervisor:bob")


def test_the_oldest_non_held_item_of_each_kind(dep: Deployment) -> None:
    now = datetime.now(UTC)
    camera = factories.camera(dep)
    assert all(p.oldest_age is None for p in retention_status(dep, now).promises)
    ages = [timedelta(hours=h) for h in (30, 20, 10, 5)]
    reads = [factories.read(dep, f"7ST{i}00", camera_id=camera, observed_at=now - a)
             for i, a in enumerate(ages)]  # fmt: skip
    factories.ingest(dep, reads)
    status = retention_status(dep, now)
    assert status.promise("non_hit_reads").oldest_age == ages[0]
    assert status.promise("hit_reads").oldest_age is None
    # The two oldest go under a legal hold: the promise is about the next one.
    _hold(dep, HoldKind.READ, reads[0].read_id)
    _hold(dep, HoldKind.READ, reads[1].read_id)
    assert retention_status(dep, now).promise("non_hit_reads").oldest_age == ages[2]
    # A hit counts for the hit window only.
    with dep.db.write() as conn:
        from sqlalchemy import update

        from privplate.store.models import Read, table_of

        reads_table = table_of(Read)
        conn.execute(
            update(reads_table).where(reads_table.c.read_id == reads[3].read_id).values(is_hit=True)
        )
    status = retention_status(dep, now)
    assert status.promise("hit_reads").oldest_age == ages[3]
    assert status.promise("non_hit_reads").oldest_age == ages[2]
    _hold(dep, HoldKind.READ, reads[3].read_id)
    assert retention_status(dep, now).promise("hit_reads").oldest_age is None
