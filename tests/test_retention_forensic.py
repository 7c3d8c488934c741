"""Forensics on SQLite under New Hampshire rules: purged reads leave no bytes behind.

The harder case for page-level leftovers: hits (kept 30 days) sit between non-hits purged after
three minutes, late uploads arrive out of order, and the epoch key stays alive all along, so a
leftover token would still be matchable. A purge runs every simulated minute while reads keep
arriving; afterwards no purged read's token (best or alternate) may remain in the database file
or its WAL, and every kept read's token must (so the scan can fail).
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from privplate.deployment import Deployment
from privplate.retention.purge import purge
from privplate.store import ReadIn
from privplate.store import purging as purging_mod
from tests import factories
from tests.conftest import ON_POSTGRES
from tests.privacy import dump_database
from tests.test_retention import SECOND, T, stored_reads

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="scans the SQLite database and WAL files")

STEP = 20 * SECOND
STEPS = 90  # 30 simulated minutes, a purge every 3 steps


def run_new_hampshire_day(dep: Deployment) -> dict[uuid.UUID, ReadIn]:
    rng = random.Random(2031)
    factories.camera(dep)
    sent: dict[uuid.UUID, ReadIn] = {}
    start = T - STEPS * STEP
    serial = 0
    for step in range(1, STEPS + 1):
        now = start + step * STEP
        batch, hits = [], set()
        for _ in range(30):
            serial += 1
            late = rng.random() < 0.1  # an edge catching up: observed up to ~3 minutes ago
            age = timedelta(seconds=rng.uniform(100, 170)) if late else rng.uniform(0, 19) * SECOND
            plate = f"NH{serial:05d}"
            read = factories.read(
                dep,
                plate,
                observed_at=now - age,
                alternates=[plate + "X"] if rng.random() < 0.3 else [],
            )
            batch.append(read)
            if rng.random() < 0.15:
                hits.add(read.read_id)
        result = factories.ingest(dep, batch, hits=hits, now=now)
        assert result.expired == 0
        sent.update((r.read_id, r) for r in batch)
        if step % 3 == 0:
            purge(dep, now=now)
    return sent


@pytest.fixture
def nh_dep(home: Path, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    monkeypatch.setenv("PRIVPLATE_RETENTION__PRESET", "new-hampshire")
    with Deployment.open(home) as dep:
        yield dep


def test_interleaved_hits_and_late_reads_leave_no_purged_token(nh_dep: Deployment) -> None:
    dep = nh_dep
    sent = run_new_hampshire_day(dep)
    kept = set(stored_reads(dep))
    purged = [r for rid, r in sent.items() if rid not in kept]
    assert len(purged) > 1500 and len(kept) > 300
    assert {rid for rid in kept} <= set(sent)
    with dep.db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"

    data = dump_database(dep.settings.resolved_database_url)
    leaked = [t.token.hex() for r in purged for t in r.tokens if t.token in data]
    assert leaked == [], f"{len(leaked)} purged tokens still in the files"
    kept_tokens = [t.token for rid in kept for t in sent[rid].tokens]
    assert all(t in data for t in kept_tokens), "the scan must be able to fail"


def test_a_purge_that_died_before_zeroing_is_finished_by_the_next_run(
    nh_dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = nh_dep
    sent = run_new_hampshire_day(dep)
    # More reads, then a purge that dies in the scrub: rows are gone, free space not yet zeroed.
    end = T + 10 * SECOND
    more = [factories.read(dep, f"LATE{n:04d}", observed_at=end - 170 * SECOND) for n in range(300)]
    factories.ingest(dep, more, now=end - 169 * SECOND)

    def dies(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("killed mid-scrub")

    with monkeypatch.context() as patch:
        patch.setattr(purging_mod, "scrub_free_space", dies)
        with pytest.raises(RuntimeError, match="killed mid-scrub"):
            purge(dep, now=end + 20 * SECOND)
    # The next run deletes nothing new, yet finishes the zeroing the dead one left undone.
    report = purge(dep, now=end + 21 * SECOND)
    assert not report.reads_total and "scrub" in report.phases
    kept = set(stored_reads(dep))
    everything = {**sent, **{r.read_id: r for r in more}}
    data = dump_database(dep.settings.resolved_database_url)
    gone = [r for rid, r in everything.items() if rid not in kept]
    assert not [t for r in gone for t in r.tokens if t.token in data]
