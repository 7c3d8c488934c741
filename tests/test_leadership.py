"""One leader for the purge and the audit checkpoints across processes, and key changes seen
by every process (privplate.store.leadership, privplate.leader), on SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from sqlalchemy import Connection, func, select, text
from sqlalchemy.engine import make_url

from privplate.audit import verify_log
from privplate.deployment import Deployment, init_deployment
from privplate.errors import EpochKeyDestroyed
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.leader import refresh_keys
from privplate.services import Services
from privplate.store import SqlEpochStorage
from privplate.store.leadership import Leadership, deployment_lock_key
from privplate.store.models import Epoch, Read
from privplate.tokens.keyring import Keyring
from tests import factories
from tests.cluster_support import PRIVPLATE, Server, cluster
from tests.conftest import ON_POSTGRES, database_in

DAY = timedelta(days=1)
T = TypeVar("T")


def until(what: Callable[[], T | None], message: str, seconds: float = 60) -> T:
    deadline = time.monotonic() + seconds
    while True:
        got = what()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.1)


# -- the lock itself ------------------------------------------------------------------------------


@pytest.fixture
def two(dep: Deployment) -> Iterator[tuple[Leadership, Leadership]]:
    a, b = Leadership(dep.db), Leadership(dep.db)
    yield a, b
    a.release()
    b.release()


def test_one_process_leads_until_it_lets_go(two: tuple[Leadership, Leadership]) -> None:
    a, b = two
    assert a.hold() and a.is_leader and a.check()
    assert not b.hold() and not b.is_leader and not b.check()
    assert a.hold()  # holding again keeps the lead
    a.release()
    assert not a.is_leader and not a.check()  # check never takes the lead
    assert b.hold()
    assert not a.hold()


def test_deployments_on_one_server_each_have_a_leader(dep: Deployment, tmp_path: Path) -> None:
    other_url = database_in(tmp_path / "other", prefix="o")
    (tmp_path / "other").mkdir()
    url = next(other_url)
    try:
        init_deployment(tmp_path / "other" / "dep", database_url=url)
        with Deployment.open(tmp_path / "other" / "dep") as other:
            ours, theirs = Leadership(dep.db), Leadership(other.db)
            try:
                assert ours.hold() and theirs.hold()
            finally:
                ours.release()
                theirs.release()
            if ON_POSTGRES:
                with dep.db.read() as a, other.db.read() as b:
                    keys = {deployment_lock_key(c, p) for c in (a, b) for p in ("leader", "x")}
                    assert len(keys) == 4
    finally:
        next(other_url, None)


def _backend_holding(conn: Connection, key: int) -> int | None:
    unsigned = key & (2**64 - 1)
    return conn.execute(
        text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :hi "
            "AND objid = :lo AND objsubid = 1"
        ),
        {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
    ).scalar()


@pytest.mark.skipif(not ON_POSTGRES, reason="a database connection to lose: PostgreSQL")
def test_a_leader_whose_connection_dies_loses_the_lead_and_takes_it_again(
    dep: Deployment, two: tuple[Leadership, Leadership]
) -> None:
    a, b = two
    assert a.hold()
    with dep.db.read() as conn:
        key = deployment_lock_key(conn, "leader")
        pid = _backend_holding(conn, key)
        assert pid is not None, "the lead is an advisory lock held by a backend"
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    assert a.is_leader  # it does not know yet
    assert not a.check()  # the check before a job finds the connection gone
    until(b.hold, "another process takes the lead once the dead backend's lock is gone")
    assert not a.hold()
    b.release()
    assert a.hold()  # on a fresh connection
    with dep.db.read() as conn:
        assert _backend_holding(conn, key) not in (None, pid)


# -- key refresh in a long-running process ---------------------------------------------------------


def test_refresh_drops_a_retired_kek_and_a_destroyed_current_key(dep: Deployment) -> None:
    worker = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)  # another process
    old = datetime.now(UTC) - 40 * DAY
    kept = worker.current_key(old)  # cached as that process's current key
    generation = worker.kek_generation
    dep.keyring.destroy_before(old + 2 * DAY)  # the purge, elsewhere: destroys it and rotates
    # Until it refreshes, the worker keeps the retired KEK and the destroyed key in memory.
    assert worker.kek_generation == generation
    assert generation in worker._keks
    assert worker.current_key(old).key == kept.key
    worker.refresh()
    assert worker.kek_generation == generation + 1
    assert set(worker._keks) == {generation + 1}
    with pytest.raises(EpochKeyDestroyed):
        worker.current_key(old)
    today = worker.current_key()
    assert today.key == dep.keyring.current_key().key  # live epochs unwrap under the new KEK


def test_refresh_syncs_the_current_epoch_and_forgets_destroyed_ones(dep: Deployment) -> None:
    with Services(dep) as services:
        _refresh_syncs(dep, services)


def _refresh_syncs(dep: Deployment, services: Services) -> None:
    tokens = services.hotlist_tokens
    old = dep.keyring.current_key(datetime.now(UTC) - 40 * DAY).epoch_id
    tokens.ensure_epochs([old])
    assert old in tokens._synced
    Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path).destroy_epochs([old])
    refresh_keys(dep.keyring, tokens)
    assert old not in tokens._synced
    assert dep.keyring.current_key().epoch_id in tokens._synced


# -- real servers ------------------------------------------------------------------------------

INTERVAL = 3
#: Slack on top of one interval for a loaded two-core machine (process start, scrapes).
SLACK = 12
SETTINGS = {
    "SERVER__RUN_PURGE_SCHEDULER": "true",
    "RETENTION__PURGE_INTERVAL_SECONDS": str(INTERVAL),
}


def _admin_key(home: Path) -> str:
    with Deployment.open(home, actor="test-setup") as dep:
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="test", name="ops", role=Role.ADMIN, password=None
        )
        return accounts.create_api_key(db=dep.db, audit=dep.audit, actor="test", name="ops")[1]


def _metrics(server: Server, key: str) -> dict[str, float] | None:
    """This server's privplate gauges, or None if it does not answer."""
    try:
        answer = httpx.get(
            f"{server.url}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=5
        )
    except httpx.HTTPError:
        return None
    assert answer.status_code == 200, answer.text
    out = {}
    for line in answer.text.splitlines():
        if line.startswith("privplate_") and "{" not in line:
            name, value = line.split()
            out[name] = float(value)
    return out


def _gauges(servers: list[Server], key: str, name: str) -> list[float]:
    values = []
    for s in servers:
        m = _metrics(s, key)
        assert m is not None, s.log.read_text()
        values.append(m[name])
    return values


def _one_leader(servers: list[Server], key: str) -> Server | None:
    flags = _gauges(servers, key, "privplate_leader")
    assert sum(flags) <= 1, f"two leaders at once: {flags}"
    return servers[flags.index(1)] if sum(flags) == 1 else None


def _expired_epoch(home: Path, age: timedelta, plate: str) -> int:
    """A read past its window (and so an epoch to destroy) as an edge sent it back then."""
    with Deployment.open(home, actor="test-setup") as dep:
        with dep.db.read() as conn:
            has_camera = conn.execute(text("SELECT count(*) FROM cameras")).scalar()
        if not has_camera:
            factories.camera(dep)
        observed = datetime.now(UTC) - age
        read = factories.read(dep, plate, observed_at=observed)
        factories.ingest(dep, [read], now=observed + timedelta(seconds=1))
        return read.epoch_id


def _destroyed(home: Path, epoch_id: int) -> bool:
    with Deployment.open(home, actor="test-check") as dep, dep.db.read() as conn:
        key = conn.execute(select(Epoch.wrapped_key).where(Epoch.id == epoch_id)).scalar()
        return key is None


def _purges(dep: Deployment) -> list[tuple[datetime, datetime, str]]:
    """(started, recorded, runner) of every purge in the audit log, oldest first."""
    out = []
    for stored in dep.audit.entries(action="retention.purged"):
        assert stored.entry is not None
        details = stored.entry.details
        started = datetime.fromisoformat(str(details["run_started_at"]))
        out.append((started, stored.created_at, str(details["runner"])))
    return sorted(out)


def _assert_one_purge_at_a_time(dep: Deployment) -> set[int]:
    runs = _purges(dep)
    assert runs, "no purge ran"
    for (_, ended, _), (started, _, _) in itertools.pairwise(runs):
        assert started >= ended, "two purges overlapped"
    return {int(r.rsplit("/", 1)[1]) for _, _, r in runs}


def test_three_servers_one_leader_handover_and_keys_everywhere(home: Path) -> None:
    key = _admin_key(home)
    with cluster(home, 3, SETTINGS) as servers:
        leader = until(lambda: _one_leader(servers, key), "no server took the lead")
        for _ in range(5):  # and it stays one
            assert _one_leader(servers, key) is leader
            time.sleep(0.3)
        generation = _gauges(servers, key, "privplate_kek_generation")[0]
        assert _gauges(servers, key, "privplate_kek_generation") == [generation] * 3
        epochs = _gauges(servers, key, "privplate_current_epoch")
        assert len(set(epochs)) == 1

        # The leader purges an expired epoch and rotates the KEK; every worker sees it.
        old = _expired_epoch(home, 40 * DAY, "LEAD1")
        until(lambda: _destroyed(home, old), "the leader did not destroy the expired epoch")
        seen = time.monotonic()
        until(
            lambda: _gauges(servers, key, "privplate_kek_generation") == [generation + 1] * 3,
            "not every worker saw the rotation",
            seconds=INTERVAL + SLACK,
        )
        assert time.monotonic() - seen <= INTERVAL + SLACK

        # kill -9 the leader: another takes the lead within one interval (plus slack).
        pid = int(_gauges([leader], key, "privplate_worker_pid")[0])
        assert pid == leader.proc.pid
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(10)
        killed = time.monotonic()
        rest = [s for s in servers if s is not leader]
        successor = until(
            lambda: _one_leader(rest, key),
            "no server took over from the killed leader in time",
            seconds=INTERVAL + SLACK,
        )
        assert time.monotonic() - killed <= INTERVAL + SLACK
        assert successor.proc.poll() is None

        # The successor purges too, and the last worker sees its rotation.
        older = _expired_epoch(home, 45 * DAY, "LEAD2")
        until(lambda: _destroyed(home, older), "the new leader did not purge")
        until(
            lambda: _gauges(rest, key, "privplate_kek_generation") == [generation + 2] * 2,
            "the remaining workers did not see the new leader's rotation",
            seconds=INTERVAL + SLACK,
        )
        bystander = next(s for s in rest if s is not successor)
        bystander_pid = bystander.proc.pid
    with Deployment.open(home, actor="test-check") as dep:
        runners = _assert_one_purge_at_a_time(dep)
        assert runners <= {leader.proc.pid, successor.proc.pid}
        assert bystander_pid not in runners
        report = verify_log(dep.db, dep.audit.signer, stored=dep.audit.checkpoints())
        assert report.ok, report.problems


# -- the leader killed during a purge --------------------------------------------------------------


def _bulk_expired(home: Path, rows: int) -> datetime:
    """``rows`` non-hit reads just past the window (PostgreSQL: in the day partition that
    straddles the cutoff, so they are deleted row by row rather than dropped whole)."""
    with Deployment.open(home, actor="test-setup") as dep:
        factories.camera(dep)
        observed = datetime.now(UTC) - dep.windows.non_hit_reads - timedelta(minutes=2)
        template = factories.read(dep, "BULK0", observed_at=observed)
        factories.ingest(dep, [template], now=observed + timedelta(seconds=1))
        new_id = "gen_random_uuid()" if dep.db.is_postgres else "lower(hex(randomblob(16)))"
        new_token = "decode(md5(g::text), 'hex')" if dep.db.is_postgres else "randomblob(16)"
        series = (
            "generate_series(1, :n) AS g"
            if dep.db.is_postgres
            else "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) "
            "SELECT g FROM s)"
        )
        cols = "observed_at, epoch_id, is_alternate, is_hit, camera_id, expires_at, confidence"
        with dep.db.write() as conn:
            conn.execute(
                text(
                    f"INSERT INTO reads (read_id, token, {cols}) SELECT {new_id}, {new_token}, "
                    f"{cols} FROM reads, {series} WHERE read_id = :t"
                ),
                {"n": rows, "t": template.read_id if dep.db.is_postgres else template.read_id.hex},
            )
        return observed


def _purge_running(dep: Deployment) -> bool:
    if dep.db.is_postgres:
        with dep.db.read() as conn:
            return _backend_holding(conn, deployment_lock_key(conn, "purge-runner")) is not None
    fd = os.open(str(make_url(dep.db.url).database) + ".purge-lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if it was taken
    return False


def test_the_leader_killed_mid_purge_another_completes_it(home: Path) -> None:
    key = _admin_key(home)
    observed = _bulk_expired(home, 1_000_000 if ON_POSTGRES else 400_000)
    doomed = _expired_epoch(home, 45 * DAY, "DOOM1")
    with Deployment.open(home, actor="test-check") as dep:
        generation = dep.keyring.kek_generation
        with cluster(home, 2, SETTINGS) as servers:
            # The first leader starts purging at once on taking the lead.
            leader = until(lambda: _one_leader(servers, key), "no server took the lead")
            until(lambda: _purge_running(dep), "the leader's purge never started", seconds=30)
            leader.proc.send_signal(signal.SIGKILL)
            leader.proc.wait(10)
            killed_mid_purge = not _destroyed(home, doomed)
            (other,) = [s for s in servers if s is not leader]
            until(lambda: _one_leader([other], key), "the other server did not take over")
            until(lambda: _destroyed(home, doomed), "the purge was not completed", seconds=120)
            until(
                lambda: _gauges([other], key, "privplate_kek_generation") == [generation + 1],
                "the new leader's keyring did not move to the new KEK",
            )
            # The surviving worker still tokenizes and reads under live epochs.
            assert _gauges([other], key, "privplate_current_epoch")[0] > 0
            survivor_pid = other.proc.pid
        assert killed_mid_purge, "the purge finished before the kill: make it longer"
        with dep.db.read() as conn:
            left = conn.execute(
                select(func.count()).select_from(Read).where(Read.observed_at <= observed)
            ).scalar()
        assert left == 0, f"{left} expired reads remain"
        # Every live epoch still opens with the key file on disk, in a fresh process's keyring.
        fresh = Keyring(SqlEpochStorage(dep.db), dep.settings.kek_path)
        assert fresh.kek_generation == generation + 1
        assert fresh.live_keys()
        runners = _assert_one_purge_at_a_time(dep)
        assert survivor_pid in runners
    verify = subprocess.run(
        [PRIVPLATE, "audit", "verify", "--dir", str(home)],
        check=False,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")},
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
