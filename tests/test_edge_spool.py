"""The edge spool forgets what the server acknowledged: not only the rows, their bytes too."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path

from privplate.edge.reads import EdgeRead
from privplate.edge.spool import Spool
from privplate.store.ingest import ReadIn, TokenIn


def put_reads(spool: Spool, count: int) -> list[bytes]:
    tokens = []
    for _ in range(count):
        best, alternate = secrets.token_bytes(16), secrets.token_bytes(16)
        read = ReadIn(
            read_id=uuid.uuid4(),
            camera_id="gate-1",
            observed_at=datetime.now(UTC),
            epoch_id=1,
            tokens=[TokenIn(best), TokenIn(alternate, True)],
            confidence=0.9,
        )
        spool.put(EdgeRead(read, None))
        tokens += [best, alternate]
    return tokens


def spool_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


def test_acknowledged_tokens_leave_the_spool_files(tmp_path: Path) -> None:
    path = tmp_path / "edge" / "spool.db"
    spool = Spool(path, scrub_every_seconds=3600)  # scrubbed once, on the first acknowledgement
    sent: list[bytes] = []
    # Reads arrive while batches leave, so pages fill, split and empty in turns.
    for _round in range(40):
        waiting = put_reads(spool, 37)
        batch = spool.next_batch(30)
        assert batch is not None
        spool.acknowledge(batch.batch_id)
        sent += waiting
    left = spool.depth()
    assert left > 0
    report = spool.scrub()
    spool.close()

    data = spool_bytes(path)
    # Wire format: tokens travel as hex in the stored JSON.
    on_disk = [t for t in sent if t.hex().encode() in data]
    assert len(on_disk) == 2 * left, "exactly the tokens of the reads still waiting remain"
    assert report.pages_scanned > 0


def test_the_spool_scrubs_at_most_once_per_interval(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", scrub_every_seconds=3600)
    calls = []
    real = spool.scrub

    def counted() -> object:
        calls.append(1)
        return real()

    spool.scrub = counted  # type: ignore[method-assign]
    for _ in range(3):
        put_reads(spool, 5)
        batch = spool.next_batch(10)
        assert batch is not None
        spool.acknowledge(batch.batch_id)
    spool.close()
    assert len(calls) == 1


def test_a_failed_scrub_does_not_stop_the_uplink(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", scrub_every_seconds=0)

    def fails() -> object:
        raise OSError("disk full")

    spool.scrub = fails  # type: ignore[method-assign]
    put_reads(spool, 3)
    batch = spool.next_batch(10)
    assert batch is not None
    spool.acknowledge(batch.batch_id)  # logged, not raised: the batch is still acknowledged
    assert spool.depth() == 0
    spool.close()
