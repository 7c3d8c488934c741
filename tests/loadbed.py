"""The city topology as processes, for benchmarks/load.py and tests/test_load.py: PostgreSQL (a
private cluster, so it can be restarted), `privplate serve --workers N` with the purge and
checkpoint leader among its workers, a simulated fleet of signed devices with their own spools,
investigators asking plate queries, an operator's live alert stream and webhook receivers.

After a run, :meth:`LoadBed.verify` counts what arrived against what was sent: reads per camera
(the per-camera counters the ingest transaction keeps, which the purge leaves alone), that no
read was stored twice, one alert per hotlisted read, each alert at each webhook endpoint, and
`privplate audit verify`. Importable by benchmarks (no pytest at import time); nothing printed
holds a plate.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from privplate.deployment import Deployment, init_deployment
from privplate.hotlists import HotlistSource
from privplate.hotlists.service import EntryIn
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.services import Services
from privplate.store.models import Read, ReadCount
from privplate.store.server_models import Alert
from tests.fleet import Fleet, FleetShape, hotlist_plates, random_plate, register_fleet
from tests.hosts import Peer
from tests.pg_cluster import PrivateCluster

PRIVPLATE = str(Path(sys.executable).parent / "privplate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


# -- webhook receivers ---------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint counting what it got: by delivery id and by alert id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.raw = 0
        self.alerts: Counter[int] = Counter()
        self.deliveries: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                alert = json.loads(body)["alert"]
                delivery = self.headers.get("X-Privplate-Delivery") or f"alert-{alert['id']}"
                with receiver.lock:
                    receiver.raw += 1
                    if delivery not in receiver.deliveries:
                        receiver.deliveries.add(delivery)
                        receiver.alerts[int(alert["id"])] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the server processes ------------------------------------------------------------------------


class Server:
    """`privplate serve --workers N` on one port (uvicorn's supervisor restarts a dead worker)."""

    def __init__(
        self,
        home: Path,
        workers: int,
        env: dict[str, str],
        name: str = "serve",
        *,
        host: str = "127.0.0.1",
    ) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.host = host
        self.log_path = home / f"{name}.log"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                PRIVPLATE,
                "serve",
                "--dir",
                str(home),
                "--host",
                host,
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers = workers

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if (
                    httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
                    and len(self.worker_pids()) >= self.workers
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready: {self.log_path.read_text()[-2000:]}")

    def worker_pids(self) -> list[int]:
        if self.workers == 1:
            return [self.proc.pid]
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        # The supervisor's children: the workers (and multiprocessing's resource tracker).
        return [int(p) for p in text.split() if _is_worker(int(p))]

    def leader_pid(self) -> int | None:
        """The worker that last announced it leads (privplate.leader logs it) and is alive."""
        pids = set(self.worker_pids())
        found = None
        for line in self.log_path.read_text(errors="replace").splitlines():
            if "now leads" in line and "pid " in line:
                pid = int(line.split("pid ")[1].split(")")[0])
                found = pid if pid in pids else found
        return found

    def cpu_seconds(self) -> float:
        return _cpu(self.proc.pid, reaped=True) + sum(_cpu(p) for p in self.worker_pids())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _is_worker(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"resource_tracker" not in cmd


def _cpu(pid: int, *, reaped: bool = False) -> float:
    """utime + stime; with ``reaped``, also that of the children it has waited for (a
    PostgreSQL backend that exited, a worker that died), so their CPU is not lost."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    used = int(fields[11]) + int(fields[12])
    if reaped:
        used += int(fields[13]) + int(fields[14])  # cutime + cstime
    return used / ticks


def postgres_cpu_seconds(cluster: PrivateCluster) -> float:
    """CPU of the cluster's postmaster and all its backends (children)."""
    try:
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError):
        return 0.0
    total = _cpu(postmaster, reaped=True)
    try:
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    except OSError:
        return total
    return total + sum(_cpu(int(p)) for p in children)


# -- people using it ---------------------------------------------------------------------------


class Investigators:
    """Investigators each asking a plate query every ``every`` seconds (hotlisted or not)."""

    def __init__(self, url: str, keys: list[str], hot: list[str], every: float) -> None:
        self.url = url
        self.keys = keys
        self.hot = hot
        self.every = every
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i, key), daemon=True)
            for i, key in enumerate(keys)
        ]

    def _run(self, index: int, key: str) -> None:
        import random

        rng = random.Random(index)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.wait(self.every * rng.uniform(0.5, 1.5)):
                plate = rng.choice(self.hot) if rng.random() < 0.5 else random_plate(rng)
                now = datetime.now(UTC)
                body = {
                    "plate": plate,
                    "start": (now - timedelta(days=1)).isoformat(),
                    "end": (now + timedelta(minutes=1)).isoformat(),
                    "purpose": "stolen-vehicle",
                    "case_number": f"SPD-2026-{index:04d}",
                    "justification": "Vehicle reported stolen; checking the city's cameras.",
                }
                started = time.perf_counter()
                try:
                    answer = client.post(
                        "/queries", json=body, headers={"Authorization": f"Bearer {key}"}
                    )
                except httpx.HTTPError:
                    self.statuses[0] += 1
                    continue
                self.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    self.latencies.append(time.perf_counter() - started)

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(70)


class AlertWatch:
    """An operator's live alert stream (SSE), resuming with Last-Event-ID after a worker dies."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self.received: dict[int, tuple[str, float]] = {}  # alert id -> (read id, when)
        #: Alert id -> seconds from its recording (in the ingest transaction, by whichever
        #: worker took the batch) to its event on this stream (one clock: this machine's).
        self.since_recorded: dict[int, float] = {}
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = 0
        while not self._stop.is_set():
            headers = {"Authorization": f"Bearer {self.key}", "Last-Event-ID": str(last)}
            try:
                with httpx.stream(
                    "GET", f"{self.url}/alerts/stream", headers=headers, timeout=30
                ) as answer:
                    for line in answer.iter_lines():
                        if self._stop.is_set():
                            return
                        if line.startswith("data: "):
                            alert = json.loads(line[6:])
                            last = max(last, int(alert["id"]))
                            now = time.time()
                            self.received[int(alert["id"])] = (alert["read_id"], now)
                            recorded = datetime.fromisoformat(alert["created_at"]).timestamp()
                            self.since_recorded.setdefault(int(alert["id"]), now - recorded)
            except httpx.HTTPError:
                pass
            self.reconnects += 1
            self._stop.wait(0.2)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


# -- a fleet in another host ---------------------------------------------------------------------


class RemoteFleet:
    """tests/remote_fleet.py run inside ``peer`` for ``devices``, sending to the bed's server
    over the peer's veth pair (its link can be cut while the main fleet sends over loopback)."""

    def __init__(
        self,
        peer: Peer,
        url: str,
        devices: list[Any],
        root: Path,
        shape: FleetShape,
        *,
        hot: list[str],
        rate: float,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        config = root / "remote-fleet.json"
        config.write_text(
            json.dumps(
                {
                    "url": url,
                    "devices": [(d, key.seed.hex(), cams) for d, key, cams in devices],
                    "spools": str(root / "spools"),
                    "shape": asdict(shape),
                    "hot": hot,
                    "rate": rate,
                }
            )
        )
        config.chmod(0o600)  # the devices' signing keys
        repo = Path(__file__).resolve().parent.parent
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
        }
        self.proc = peer.host.popen(
            [sys.executable, "-m", "tests.remote_fleet", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=repo,
            env=env,
        )
        self.result: dict[str, Any] = {}
        if self._line() != "ready":
            raise RuntimeError("the remote fleet did not start")

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().decode().strip()

    def _ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{command}\n".encode())
        self.proc.stdin.flush()
        return self._line()

    def depth(self) -> int:
        return int(self._ask("depth"))

    def stop(self) -> dict[str, Any]:
        """Stop producing, let the spools drain, and collect what was produced."""
        self.result = json.loads(self._ask("stop"))
        self.proc.wait(60)
        return self.result

    def produced(self) -> Counter[str]:
        return Counter(self.result["produced"])

    def hit_reads(self) -> set[uuid.UUID]:
        return {uuid.UUID(r) for r in self.result["hits"]}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- the bed -------------------------------------------------------------------------------------


@dataclass
class LoadConfig:
    workers: int = 4
    shape: FleetShape = field(default_factory=FleetShape)
    hotlist_entries: int = 500
    investigators: int = 5
    query_every: float = 3.0
    webhooks: int = 2
    purge_interval: int = 30
    #: Non-hit reads expire this soon, so the purge deletes the run's own reads as it goes.
    non_hit_window: str = "2m"
    epoch_seconds: int = 3600
    #: Devices kept for a fleet in another host (``RemoteFleet``); the server then listens on
    #: every address, so that host reaches it over its veth pair.
    remote_devices: int = 0


@dataclass
class Figures:
    """What one run measured (counts and timings only)."""

    values: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.values[key] = value

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


class LoadBed:
    def __init__(self, config: LoadConfig, *, root: Path | None = None) -> None:
        self.config = config
        # Not pytest's tmp_path: the postgres user must reach the cluster's folder.
        self.root = root or Path(tempfile.mkdtemp(prefix="privplate-load-"))
        os.chmod(self.root, 0o755)  # noqa: S103 - the postgres user must enter it
        self.cluster = PrivateCluster(self.root / "pg", free_port())
        self.home = self.root / "deployment"
        # Each simulated device stands for a box with its own disk: on this machine's one disk
        # 200 spools' fsyncs would measure the disk, not privplate. Memory (tmpfs) when there.
        shm = Path("/dev/shm")  # noqa: S108 - a private folder made inside it
        self.spools = (
            Path(tempfile.mkdtemp(prefix="privplate-spools-", dir=shm))
            if shm.is_dir() and os.access(shm, os.W_OK)
            else self.root / "spools"
        )
        self.receivers: list[Receiver] = []
        self.server: Server | None = None
        self.fleet: Fleet | None = None
        self.hot = hotlist_plates(config.hotlist_entries)
        self.investigator_keys: list[str] = []
        self.operator_key = ""
        self.devices: list[Any] = []
        self.remote_devices: list[Any] = []
        self.baseline: tuple[Counter[str], set[int]] = (Counter(), set())

    # -- setting up ----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        c = self.config
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")},
            "PRIVPLATE_SERVER__RUN_PURGE_SCHEDULER": "true",
            "PRIVPLATE_RETENTION__PURGE_INTERVAL_SECONDS": str(c.purge_interval),
            "PRIVPLATE_RETENTION__WINDOWS": json.dumps({"non_hit_reads": c.non_hit_window}),
            "PRIVPLATE_QUERIES__PER_USER_PER_DAY": "10000",
            "PRIVPLATE_QUERIES__PER_DEPLOYMENT_PER_DAY": "1000000",
            "PRIVPLATE_QUERIES__SPOT_CHECK_SHARE": "0",
            "PRIVPLATE_AUDIT__CHECKPOINT_INTERVAL_MINUTES": "1",
        }

    def setup(self) -> None:
        c = self.config
        self.cluster.init()
        self.cluster.start()
        init_deployment(self.home, database_url=self.cluster.url, epoch_seconds=c.epoch_seconds)
        for _ in range(c.webhooks):
            self.receivers.append(Receiver())
        with Deployment.open(self.home, actor="load-setup") as dep, Services(dep) as services:
            for i in range(c.investigators):
                name = f"inv{i}"
                accounts.create_user(
                    db=dep.db,
                    audit=dep.audit,
                    actor="setup",
                    name=name,
                    role=Role.INVESTIGATOR,
                    password=None,
                    agency="City PD",
                )
                self.investigator_keys.append(
                    accounts.create_api_key(db=dep.db, audit=dep.audit, actor="setup", name=name)[1]
                )
            accounts.create_user(
                db=dep.db,
                audit=dep.audit,
                actor="setup",
                name="op",
                role=Role.OPERATOR,
                password=None,
            )
            self.operator_key = accounts.create_api_key(
                db=dep.db, audit=dep.audit, actor="setup", name="op"
            )[1]
            services.hotlists.create(
                actor="setup",
                name="stolen",
                source=HotlistSource.STOLEN_VEHICLE,
                max_entries=max(c.hotlist_entries, 10),
            )
            services.hotlists.add_entries(
                actor="setup",
                hotlist="stolen",
                entries=[
                    EntryIn(p, "stolen vehicle", "SPD-2026-0001", imported=True) for p in self.hot
                ],
            )
            for receiver in self.receivers:
                services.webhooks.create(actor="setup", url=receiver.url)
        self.devices = register_fleet(self.home, c.shape)
        if c.remote_devices:
            remote = FleetShape(**{**asdict(c.shape), "devices": c.remote_devices})
            self.remote_devices = register_fleet(self.home, remote, prefix="r")

    def start_server(self, workers: int | None = None) -> Server:
        env = {**self.env()}
        # The hotlist's caps were raised for the run's entries.
        env["PRIVPLATE_HOTLISTS__MAX_ENTRIES_PER_LIST"] = str(
            max(10_000, self.config.hotlist_entries)
        )
        host = "0.0.0.0" if self.config.remote_devices else "127.0.0.1"  # noqa: S104 - see remote_devices
        self.server = Server(self.home, workers or self.config.workers, env, host=host)
        self.server.wait_ready()
        return self.server

    def start_remote(self, peer: Peer, rate: float) -> RemoteFleet:
        """The bed's remote devices sending from ``peer`` to the running server (start the
        main fleet first: its baseline is what both are counted against)."""
        assert self.server is not None
        return RemoteFleet(
            peer,
            f"http://{peer.server_address}:{self.server.port}",
            self.remote_devices,
            self.spools / "remote",
            self.config.shape,
            hot=self.hot,
            rate=rate,
        )

    def start_fleet(self, rate: float, devices: list[Any] | None = None) -> Fleet:
        assert self.server is not None
        self.fleet = Fleet(
            devices or self.devices,
            [self.server.url],
            self.spools,
            self.config.shape,
            hot=self.hot,
        )
        self.baseline = self._snapshot()
        self.fleet.start(rate)
        return self.fleet

    def _snapshot(self) -> tuple[Counter[str], set[int]]:
        """Reads per camera and alert ids so far: a run counts what came after."""
        with self._dep() as dep, dep.db.read() as conn:
            counts = Counter(
                {
                    r[0]: int(r[1])
                    for r in conn.execute(
                        select(ReadCount.camera_id, func.sum(ReadCount.reads)).group_by(
                            ReadCount.camera_id
                        )
                    )
                }
            )
            alerts = {int(a) for a in conn.execute(select(Alert.id)).scalars()}
        return counts, alerts

    # -- reading the database ------------------------------------------------------------------

    @contextmanager
    def _dep(self) -> Iterator[Deployment]:
        with Deployment.open(self.home, actor="load-check") as dep:
            yield dep

    def stored_reads(self) -> int:
        with self._dep() as dep, dep.db.read() as conn:
            return int(
                conn.execute(select(func.coalesce(func.sum(ReadCount.reads), 0))).scalar() or 0
            )

    def verify(
        self, fleet: Fleet, *, remote: RemoteFleet | None = None, webhook_timeout: float = 120.0
    ) -> Figures:
        """Counts of what arrived against what was sent (by ``fleet`` and a ``remote`` one that
        has stopped)."""
        out = Figures()
        produced = fleet.produced()
        hits = fleet.hit_reads()
        if remote is not None:
            produced += remote.produced()
            hits |= remote.hit_reads()
        base_counts, base_alerts = self.baseline
        counts, _ = self._snapshot()
        per_camera = counts - base_counts
        with self._dep() as dep, dep.db.read() as conn:
            doubled = conn.execute(
                select(func.count()).select_from(
                    select(Read.read_id)
                    .where(Read.is_alternate.is_(False))
                    .group_by(Read.read_id)
                    .having(func.count() > 1)
                    .subquery()
                )
            ).scalar_one()
            new_alerts = [
                (int(r[0]), uuid.UUID(str(r[1])))
                for r in conn.execute(select(Alert.id, Alert.read_id))
                if int(r[0]) not in base_alerts
            ]
        alert_reads = Counter(read for _, read in new_alerts)
        alert_ids = {alert for alert, _ in new_alerts}
        out["reads_sent"] = sum(produced.values())
        out["reads_stored"] = sum(per_camera.values())
        out["cameras_off"] = sum(
            1 for cam in produced | per_camera if produced[cam] != per_camera[cam]
        )
        out["reads_lost"] = sum(max(0, produced[c] - per_camera[c]) for c in produced)
        out["reads_extra"] = sum(max(0, per_camera[c] - produced[c]) for c in per_camera)
        out["reads_doubled"] = int(doubled)
        out["hit_reads"] = len(hits)
        out["alerts"] = sum(alert_reads.values())
        out["hits_without_alert"] = len(hits - set(alert_reads))
        out["alerts_doubled"] = sum(1 for n in alert_reads.values() if n > 1)
        out["alerts_unexpected"] = len(set(alert_reads) - hits)
        deadline = time.monotonic() + webhook_timeout
        # Receivers keep earlier phases' alerts too: wait until each holds all of this one's.
        while time.monotonic() < deadline and any(
            not alert_ids <= set(r.alerts) for r in self.receivers
        ):
            time.sleep(0.5)
        out["webhook_missing"] = sum(len(alert_ids - set(r.alerts)) for r in self.receivers)
        out["webhook_doubled"] = sum(
            sum(1 for n in r.alerts.values() if n > 1) for r in self.receivers
        )
        out["webhook_raw_repeats"] = sum(r.raw - len(r.deliveries) for r in self.receivers)
        audit = subprocess.run(
            [PRIVPLATE, "audit", "verify", "--dir", str(self.home)],
            capture_output=True,
            text=True,
            env=self.env(),
            check=False,
        )
        out["audit_verifies"] = audit.returncode == 0
        return out

    def close(self) -> None:
        if self.fleet is not None:
            self.fleet.close()
        if self.server is not None:
            self.server.stop()
        for receiver in self.receivers:
            receiver.close()
        self.cluster.stop("immediate")
        shutil.rmtree(self.spools, ignore_errors=True)
