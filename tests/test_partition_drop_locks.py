"""Dropping an old daily partition while an ingest is between its camera check and its read
lookup: the drop waits for the ingest instead of deadlocking with it (found by the load run,
where every minute's purge killed a few concurrent ingests with DeadlockDetected)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from privplate.deployment import Deployment
from privplate.store.models import Camera, Read
from privplate.store.partitions import existing_partitions
from privplate.store.purging import drop_partitions
from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="daily partitions are PostgreSQL's")


class _Log:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    def held(self, step: str, seconds: float) -> None:
        self.phases[step] = seconds


def test_drop_waits_for_an_ingest_holding_the_camera_lock(dep: Deployment) -> None:
    old_day = date.today() - timedelta(days=40)
    dep.db.ensure_partitions({old_day})
    name = f"reads_p{old_day:%Y%m%d}"
    with dep.db.read() as conn:
        assert name in existing_partitions(conn, "reads")
    start = datetime(old_day.year, old_day.month, old_day.day, tzinfo=UTC)
    dropped: list[str] = []
    failure: list[BaseException] = []

    def purge() -> None:
        try:
            dropped.extend(
                drop_partitions(dep.db, "reads", [(name, start)], lambda *_: False, _Log())
            )
        except BaseException as exc:
            failure.append(exc)

    # The ingest's order: the cameras first (its camera check), then the reads.
    with dep.db.engine.connect() as ingest:
        ingest.execute(select(Camera.id).limit(1)).all()
        worker = threading.Thread(target=purge)
        worker.start()
        worker.join(1.0)  # the drop is now waiting (for the cameras lock, with the fix)
        ingest.execute(text("SET LOCAL lock_timeout = '10s'"))
        ingest.execute(select(Read.read_id).limit(1)).all()  # deadlocked before the fix
        ingest.commit()
    worker.join(30)
    assert not failure, failure
    assert dropped == [name]
    with dep.db.read() as conn:
        assert name not in existing_partitions(conn, "reads")
