"""The uplink's linger (edge.uplink_linger_seconds): after a partial batch the worker waits for
more reads, so a busy device sends fewer, fuller requests, and a read that raised an alert at
the edge is sent at once (hurry). Real spool, real single-box ingest (LocalUplink)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from privplate.deployment import Deployment
from privplate.edge.reads import EdgeRead
from privplate.edge.spool import Spool, SpooledBatch
from privplate.edge.uplink import LocalUplink, UplinkWorker
from privplate.services import Services
from privplate.store.ingest import ReadIn
from privplate.store.models import Read
from privplate.store.server_models import DeviceBatch
from tests import factories

CAMERA = "gate-1"


class Counting(LocalUplink):
    """The single-box uplink, counting the batches it hands to the ingest."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.batches: list[int] = []

    def send(self, batch: SpooledBatch) -> None:
        super().send(batch)
        self.batches.append(batch.reads)


def _stored(dep: Deployment) -> int:
    with dep.db.read() as conn:
        return int(conn.execute(select(func.count(func.distinct(Read.read_id)))).scalar_one())


def _wait(what: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if what():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def _read(dep: Deployment, i: int) -> ReadIn:
    return factories.read(dep, f"LG{i:04d}", camera_id=CAMERA)


def test_lingering_sends_fewer_fuller_batches_and_a_hit_goes_at_once(
    dep: Deployment, tmp_path: Path
) -> None:
    dep.add_camera(CAMERA)
    with Services(dep) as services:
        spool = Spool(tmp_path / "spool.db")
        uplink = Counting(services)
        worker = UplinkWorker(spool, uplink, batch_reads=200, idle_poll=0.05, linger=1.5)
        worker.start()
        try:
            spool.put(EdgeRead(_read(dep, 0), None))
            _wait(lambda: uplink.batches == [1])  # the first read of a quiet spool goes
            # Reads arriving while the worker lingers after that partial batch wait for it.
            for i in range(1, 31):
                spool.put(EdgeRead(_read(dep, i), None))
                time.sleep(0.02)
            _wait(lambda: sum(uplink.batches) == 31)
            assert len(uplink.batches) <= 3, uplink.batches
            # Now lingering again: a read that raised an edge alert is not held back.
            before = len(uplink.batches)
            spool.put(EdgeRead(_read(dep, 99), None))
            sent_at = time.monotonic()
            worker.hurry()
            _wait(lambda: len(uplink.batches) == before + 1, seconds=1.0)
            took = time.monotonic() - sent_at
        finally:
            worker.stop()
            spool.close()
        print(f"\nbatches {uplink.batches}; hurried read sent after {took * 1000:.0f} ms")  # noqa: T201
        assert _stored(dep) == 32


def test_without_linger_each_read_goes_as_soon_as_it_is_spooled(
    dep: Deployment, tmp_path: Path
) -> None:
    dep.add_camera(CAMERA)
    with Services(dep) as services:
        spool = Spool(tmp_path / "spool.db")
        uplink = Counting(services)
        worker = UplinkWorker(spool, uplink, batch_reads=200, idle_poll=0.05)
        worker.start()
        try:
            for i in range(10):
                spool.put(EdgeRead(_read(dep, i), None))
                _wait(
                    lambda: sum(uplink.batches) == len(uplink.batches) and bool(spool.depth() == 0)
                )
        finally:
            worker.stop()
            spool.close()
        assert uplink.batches == [1] * 10
        assert _stored(dep) == 10
        with dep.db.read() as conn:  # single box: no device receipts are involved
            assert conn.execute(select(func.count()).select_from(DeviceBatch)).scalar_one() == 0
