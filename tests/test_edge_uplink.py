"""Spool and uplink faults against the real server (uvicorn in a child process): every read
arrives exactly once whether the server is down, the edge dies mid-batch, or the server dies
mid-request."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from privplate.deployment import Deployment
from privplate.devices import DeviceKey
from privplate.devices.registry import register_device
from privplate.edge.reads import EdgeRead
from privplate.edge.spool import Spool
from privplate.edge.uplink import DeviceClient, HttpUplink, UplinkError, UplinkWorker
from privplate.sealing import generate_keypair, seal
from privplate.store.ingest import EvidenceIn, ReadIn, TokenIn
from tests import factories
from tests.conftest import ON_POSTGRES

pytest.importorskip("uvicorn")
pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="the child server uses the SQLite file")
CAMERA = "gate-1"
DEVICE = "edge-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """The privplate API server in a child process, which the test can kill -9."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        code = (
            "import uvicorn, sys; from privplate.api import create_app; "
            "uvicorn.run(create_app(sys.argv[1], run_scheduler=False), host='127.0.0.1', "
            "port=int(sys.argv[2]), log_level='warning')"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(self.home), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


@pytest.fixture
def server(home: Path) -> Iterator[Server]:
    running = Server(home)
    yield running
    running.kill()


@pytest.fixture
def device(home: Path) -> DeviceKey:
    key = DeviceKey.generate(DEVICE)
    with Deployment.open(home) as dep:
        dep.add_camera(CAMERA)
        register_device(
            db=dep.db,
            audit=dep.audit,
            actor="test",
            device_id=DEVICE,
            public_key=key.public_key,
            cameras=[CAMERA],
        )
    return key


def spool_reads(home: Path, spool: Spool, count: int, evidence_bytes: int = 0) -> set[uuid.UUID]:
    """Reads as the pipeline makes them (random tokens, sealed random 'images')."""
    _, public = generate_keypair()
    with Deployment.open(home) as dep:
        epoch = dep.keyring.current_key()
    ids: set[uuid.UUID] = set()
    for _ in range(count):
        now = datetime.now(UTC)
        evidence = None
        if evidence_bytes:
            evidence_id = uuid.uuid4()
            sealed = seal(secrets.token_bytes(evidence_bytes), public, evidence_id=evidence_id)
            evidence = EvidenceIn(evidence_id, CAMERA, now, sealed)
        read = ReadIn(
            read_id=uuid.uuid4(),
            camera_id=CAMERA,
            observed_at=now,
            epoch_id=epoch.epoch_id,
            tokens=[TokenIn(secrets.token_bytes(16)), TokenIn(secrets.token_bytes(16), True)],
            confidence=0.9,
            evidence_id=evidence.evidence_id if evidence else None,
        )
        spool.put(EdgeRead(read, evidence))
        ids.add(read.read_id)
    return ids


def stored(home: Path) -> tuple[set[uuid.UUID], int, int]:
    """(read ids in the server's store, token rows, reads with two token rows)."""
    with Deployment.open(home) as dep, dep.db.read() as conn:
        rows = conn.execute(text("SELECT read_id, count(*) FROM reads GROUP BY read_id")).all()
    ids = {_uuid(r[0]) for r in rows}
    return ids, sum(r[1] for r in rows), sum(1 for r in rows if r[1] == 2)


def _uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, bytes):
        return uuid.UUID(bytes=value)
    return uuid.UUID(str(value))


def drain(worker: UplinkWorker, spool: Spool, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while spool.depth() and time.monotonic() < deadline:
        try:
            worker.step()
        except UplinkError:
            time.sleep(0.2)
    assert spool.depth() == 0, "spool did not drain"


def test_server_down_during_a_run_then_everything_arrives_once(
    home: Path, tmp_path: Path, server: Server, device: DeviceKey
) -> None:
    spool = Spool(tmp_path / "spool.db")
    worker = UplinkWorker(
        spool, HttpUplink(DeviceClient(server.url, device, timeout=5)), batch_reads=7
    )
    sent = spool_reads(home, spool, 20)
    with pytest.raises(UplinkError, match="unreachable"):
        worker.step()  # nobody listens yet
    more = spool_reads(home, spool, 10)  # the camera keeps going meanwhile
    assert spool.depth() == 30
    server.start()
    drain(worker, spool)
    ids, rows, complete = stored(home)
    assert ids == sent | more and rows == 60 and complete == 30


class CrashAfterSend(BaseException):
    """Stands for the edge process dying between the server's answer and the spool ack."""


def test_edge_killed_between_send_and_ack_resends_the_same_batch_once(
    home: Path, tmp_path: Path, server: Server, device: DeviceKey
) -> None:
    server.start()
    path = tmp_path / "spool.db"
    spool = Spool(path)
    sent = spool_reads(home, spool, 12)
    real = HttpUplink(DeviceClient(server.url, device, timeout=5))

    class Dying:
        def send(self, batch: object) -> None:
            real.send(batch)  # type: ignore[arg-type]
            raise CrashAfterSend

    with pytest.raises(CrashAfterSend):
        UplinkWorker(spool, Dying(), batch_reads=5).step()
    spool.close()
    reopened = Spool(path)  # the edge restarts on the same spool file
    assert reopened.depth() == 12
    drain(UplinkWorker(reopened, real, batch_reads=5), reopened)
    ids, rows, _ = stored(home)
    assert ids == sent and rows == 24


EDGE_SCRIPT = """
import sys, time
from pathlib import Path
from privplate.devices import DeviceKey
from privplate.edge.spool import Spool
from privplate.edge.uplink import DeviceClient, HttpUplink, UplinkWorker, UplinkError
spool = Spool(Path(sys.argv[1]))
key = DeviceKey(sys.argv[3], bytes.fromhex(sys.argv[4]))
worker = UplinkWorker(spool, HttpUplink(DeviceClient(sys.argv[2], key, timeout=5)), batch_reads=3)
while True:
    try:
        worker.step()
    except UplinkError:
        time.sleep(0.05)
"""


def test_edge_process_killed_mid_batch_loses_and_duplicates_nothing(
    home: Path, tmp_path: Path, server: Server, device: DeviceKey
) -> None:
    server.start()
    path = tmp_path / "spool.db"
    spool = Spool(path)
    sent = spool_reads(home, spool, 60, evidence_bytes=20_000)
    args = [sys.executable, "-c", EDGE_SCRIPT, str(path), server.url, DEVICE, device.seed.hex()]
    for _ in range(3):  # kill -9 the sending edge three times while it works
        edge = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = spool.depth()
        while spool.depth() == before and edge.poll() is None:
            time.sleep(0.01)
        os.kill(edge.pid, signal.SIGKILL)
        edge.wait()
    assert 0 < spool.depth() < 60
    drain(UplinkWorker(spool, HttpUplink(DeviceClient(server.url, device)), batch_reads=3), spool)
    ids, rows, _ = stored(home)
    assert ids == sent and rows == 120


def test_server_killed_mid_request_loses_and_duplicates_nothing(
    home: Path, tmp_path: Path, server: Server, device: DeviceKey
) -> None:
    server.start()
    spool = Spool(tmp_path / "spool.db")
    # Large batches (sealed evidence) so the server is busy when it is killed.
    sent = spool_reads(home, spool, 40, evidence_bytes=200_000)
    worker = UplinkWorker(
        spool, HttpUplink(DeviceClient(server.url, device, timeout=5)), batch_reads=10
    )
    worker.start()
    for _ in range(2):
        time.sleep(0.3)
        server.kill()
        server.start()
    worker.stop(drain_seconds=60)
    drain(worker, spool)
    # (How many sends the kills interrupted depends on timing; the outcome may not.)
    ids, rows, _ = stored(home)
    assert ids == sent and rows == 80


def test_server_killed_after_storing_before_answering_gets_a_replay_not_a_copy(
    home: Path, tmp_path: Path, server: Server, device: DeviceKey
) -> None:
    server.start()
    spool = Spool(tmp_path / "spool.db")
    sent = spool_reads(home, spool, 9, evidence_bytes=5_000)
    real = HttpUplink(DeviceClient(server.url, device, timeout=5))

    class AnswerLost:
        """The server stores the batch and dies before its answer reaches the edge."""

        def send(self, batch: object) -> None:
            real.send(batch)  # type: ignore[arg-type]
            server.kill()
            raise UplinkError("connection reset before the answer")

    worker = UplinkWorker(spool, AnswerLost(), batch_reads=4)
    with pytest.raises(UplinkError):
        worker.step()
    assert spool.depth() == 9  # not acknowledged: the edge cannot know it was stored
    server.start()
    drain(UplinkWorker(spool, real, batch_reads=4), spool)
    ids, rows, _ = stored(home)
    assert ids == sent and rows == 18


def test_edge_run_against_the_server_tokenizes_with_the_served_key(
    home: Path, tmp_path: Path, server: Server
) -> None:
    from typer.testing import CliRunner

    from privplate.cli.main import app
    from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, models_missing

    if models_missing():
        pytest.skip(str(models_missing()))
    runner = CliRunner()
    result = runner.invoke(app, ["edge", "keygen", "--device-id", DEVICE, "--dir", str(home)])
    assert result.exit_code == 0, result.output
    public = bytes.fromhex(result.output.split("public key ")[1].split()[0])
    with Deployment.open(home) as dep:
        dep.add_camera(CAMERA)
        register_device(
            db=dep.db,
            audit=dep.audit,
            actor="test",
            device_id=DEVICE,
            public_key=public,
            cameras=[CAMERA],
        )
    server.start()
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = labelled_rows("eu", 3)
    for row in rows:
        (photos / Path(row["filename"]).name).symlink_to(ENDTOEND / row["filename"])
    env = {
        "PRIVPLATE_MODELS_DIR": str(MODELS_DIR),
        "PRIVPLATE_EDGE__SERVER_URL": server.url,
        "PRIVPLATE_EDGE__SPOOL_FILE": str(tmp_path / "edge-spool.db"),
    }
    args = ["edge", "run", "--source", str(photos), "--camera", CAMERA, "--dir", str(home)]
    result = runner.invoke(app, [*args, "--no-display"], env=env)
    assert result.exit_code == 0, result.output
    assert "0 reads waiting in the spool (server" in result.output + result.stderr
    with Deployment.open(home) as dep:
        since = datetime.now(UTC).replace(hour=0, minute=0, second=0)
        found = [len(factories.lookup(dep, r["plate"], since)) for r in rows]
    assert sum(found) >= 2 and max(found) == 1


def test_epoch_key_from_the_server_survives_a_restart_while_it_is_down(
    home: Path, tmp_path: Path, server: Server, device: DeviceKey
) -> None:
    from privplate.edge.uplink import ServerKeys
    from privplate.errors import KeyringError

    spool = Spool(tmp_path / "spool.db")
    client = DeviceClient(server.url, device, timeout=2)
    with pytest.raises(KeyringError, match="no epoch key yet"):
        ServerKeys(client, spool).current_key()  # never reached the server: nothing to use
    server.start()
    online = ServerKeys(client, spool).current_key()
    with Deployment.open(home) as dep:
        assert online.key == dep.keyring.current_key().key  # opened from the sealed answer
    server.kill()
    offline = ServerKeys(client, spool).current_key()  # edge restarted, server still down
    assert (offline.epoch_id, offline.key) == (online.epoch_id, online.key)
    assert b"sealed_key" in (spool.get_state(ServerKeys.STATE) or b"")
    assert online.key not in (tmp_path / "spool.db").read_bytes()  # held sealed, not in clear


def test_a_refused_batch_is_set_aside_and_the_rest_flows(home: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from privplate.cli.main import app
    from privplate.edge.uplink import LocalUplink
    from privplate.services import Services

    with Deployment.open(home) as dep:
        dep.add_camera(CAMERA)
        spool = Spool(tmp_path / "spool.db")
        good = spool_reads(home, spool, 3)
        worker = UplinkWorker(spool, LocalUplink(Services(dep)), batch_reads=3)
        assert worker.step()
        # A batch from a camera the store does not know: refused as it is, set aside.
        epoch = dep.keyring.current_key()
        stray = ReadIn(
            uuid.uuid4(),
            "gate-9",
            datetime.now(UTC),
            epoch.epoch_id,
            [TokenIn(secrets.token_bytes(16))],
            0.5,
        )
        spool.put(EdgeRead(stray, None))
        assert worker.step() and worker.rejected == 1
        later = spool_reads(home, spool, 2)
        assert worker.step() and spool.depth() == 0
        assert spool.set_aside_count() == (1, 1)
        assert stored(home)[0] == good | later
        spool.close()
        # After the operator registers the camera, the refused batch goes through.
        dep.add_camera("gate-9")
    env = {"PRIVPLATE_EDGE__SPOOL_FILE": str(tmp_path / "spool.db")}
    result = CliRunner().invoke(app, ["edge", "spool", "--retry", "--dir", str(home)], env=env)
    assert result.exit_code == 0 and "1 refused batches queued again" in result.output
    with Deployment.open(home) as dep:
        spool = Spool(tmp_path / "spool.db")
        drain_worker = UplinkWorker(spool, LocalUplink(Services(dep)))
        assert drain_worker.step() and not drain_worker.step()
        assert spool.set_aside_count() == (0, 0)
    assert stored(home)[0] == good | later | {stray.read_id}


def test_a_camera_the_device_may_not_report_for_is_set_aside_not_retried(
    home: Path, tmp_path: Path, server: Server, device: DeviceKey
) -> None:
    with Deployment.open(home) as dep:
        dep.add_camera("gate-2")  # known to the server, but not this device's
        epoch = dep.keyring.current_key()
    server.start()
    spool = Spool(tmp_path / "spool.db")
    worker = UplinkWorker(
        spool, HttpUplink(DeviceClient(server.url, device, timeout=5)), batch_reads=5
    )
    foreign = ReadIn(
        uuid.uuid4(),
        "gate-2",
        datetime.now(UTC),
        epoch.epoch_id,
        [TokenIn(secrets.token_bytes(16))],
        0.5,
    )
    spool.put(EdgeRead(foreign, None))
    assert worker.step() and worker.rejected == 1  # 403 device_not_allowed: set aside
    assert spool.set_aside_count() == (1, 1)
    later = spool_reads(home, spool, 4)
    drain(worker, spool)
    assert stored(home)[0] == later


def test_an_edge_that_folds_differently_from_the_server_refuses_to_tokenize(
    tmp_path: Path, server: Server, device: DeviceKey
) -> None:
    from privplate.edge.uplink import ServerKeys
    from privplate.errors import ConfigError
    from privplate.tokens import DEFAULT_CONFUSABLES

    server.start()
    keys = ServerKeys(
        DeviceClient(server.url, device, timeout=5),
        Spool(tmp_path / "spool.db"),
        fold=DEFAULT_CONFUSABLES,
    )
    with pytest.raises(ConfigError, match="fold_confusables"):
        keys.current_key()
