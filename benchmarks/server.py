"""Server benchmarks over HTTP on loopback, against one uvicorn worker.

Measures, on this machine:

1. query latency p50/p99: ``POST /queries`` as an investigator over a 30-epoch window with
   ``--preload`` reads stored (1M by default, inserted first through ``Deployment.ingest`` in
   5,000-read batches), half of the plates present, half absent;
2. ingest reads per second: signed ``POST /ingest`` batches of 100 reads from one edge device
   (current epoch, time-ordered), sent one after the other over a keep-alive connection;
3. ingest-to-alert latency p50/p95: a hotlist entry, a console reading ``GET /alerts/stream``
   (Server-Sent Events), and signed batches whose read hits the entry; the time from sending
   the ``POST /ingest`` to receiving its ``event: alert`` on the stream.

The server is ``privplate.api.create_app`` under uvicorn in a subprocess on 127.0.0.1 (the
client runs in this process), on a fresh deployment in a temporary directory (and, with
``--postgres``, in a fresh PostgreSQL schema dropped at the end). The investigator's query
quotas are raised for the run. Only counts and timings are printed, never plate text.

    .venv/bin/python benchmarks/server.py --quick      # smoke run, under a minute
    .venv/bin/python benchmarks/server.py              # full run (1M reads stored)
    .venv/bin/python benchmarks/server.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlean
import store_paths
from core import (  # benchmarks/core.py, next to this script
    ALTERNATE_FRACTION,
    alternate_of,
    observed_in,
    percentile,
    postgres_schema,
    postgres_version,
    random_plate,
    random_uuid,
    rate,
    timer,
)

from privplate.deployment import Deployment, init_deployment
from privplate.devices import DeviceKey, IngestBatch, registry
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.store import ReadIn, TokenIn
from privplate.store.partitions import day_of
from privplate.tokens import canonical_plate, plate_token
from privplate.tokens.keyring import EpochKey

EPOCH_SECONDS = 86_400
WINDOW_EPOCHS = 30
CAMERAS = 16
HTTP_BATCH = 100
PRELOAD_BATCH = 5_000
WARMUP = 5
DEVICE_ID = "bench-edge"
HOTLIST = "bench-bolo"
SERVER_START_SECONDS = 60.0
ALERT_WAIT_SECONDS = 10.0
# The server, in its own process so that it does not share the GIL with the client.
SERVER_CODE = """
import sys
import uvicorn
from privplate.api import create_app
uvicorn.run(
    create_app(sys.argv[1], run_scheduler=False),
    host="127.0.0.1",
    port=int(sys.argv[2]),
    log_level="warning",
    access_log=False,
    server_header=False,
    timeout_graceful_shutdown=5,
)
"""


@dataclass(frozen=True)
class Sizes:
    ingest_batches: int
    preload: int
    present_plates: int
    queries: int
    alerts: int


FULL = Sizes(
    ingest_batches=1_000, preload=1_000_000, present_plates=1_000, queries=1_000, alerts=200
)
QUICK = Sizes(ingest_batches=50, preload=20_000, present_plates=100, queries=100, alerts=20)


@dataclass
class Setup:
    """A deployment with 30 past daily epochs, cameras, an edge device and two API keys."""

    label: str
    home: Path
    keys: list[EpochKey]  # the 30 past epochs; reads are spread over them
    cameras: list[str]
    expiry: timedelta
    device: DeviceKey
    operator: str
    investigator: str
    reads: int = 0
    #: canonical plate -> number of reads stored for it (the "present" plates of the queries)
    present: dict[str, int] = field(default_factory=dict)


def prepare(label: str, home: Path, database_url: str, now: datetime) -> Setup:
    init_deployment(home, database_url=database_url, epoch_seconds=EPOCH_SECONDS)
    with Deployment.open(home, actor="bench") as dep:
        cameras = [f"bench-cam-{i:02d}" for i in range(CAMERAS)]
        for camera in cameras:
            dep.add_camera(camera)
        for days_back in range(WINDOW_EPOCHS, 0, -1):
            dep.keyring.current_key(now=now - timedelta(days=days_back, hours=-12))
        past = dep.keyring.keys_between(now - timedelta(days=WINDOW_EPOCHS), now)
        keys = [k for k in past if k.ends_at <= now]
        if len(keys) != WINDOW_EPOCHS:
            raise SystemExit(f"{label}: expected {WINDOW_EPOCHS} epochs, found {len(keys)}")
        today = dep.keyring.current_key()
        dep.db.ensure_partitions({day_of(k.starts_at) for k in [*keys, today]})
        secrets: dict[Role, str] = {}
        for role in (Role.OPERATOR, Role.INVESTIGATOR):
            name = f"bench-{role.value}"
            accounts.create_user(
                db=dep.db, audit=dep.audit, actor="bench", name=name, role=role, password=None
            )
            secrets[role] = accounts.create_api_key(
                db=dep.db, audit=dep.audit, actor="bench", name=name
            )[1]
        device = DeviceKey.generate(DEVICE_ID)
        registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor="bench",
            device_id=DEVICE_ID,
            public_key=device.public_key,
            cameras=cameras,
        )
        return Setup(
            label=label,
            home=home,
            keys=keys,
            cameras=cameras,
            expiry=dep.windows.non_hit_reads,
            device=device,
            operator=secrets[Role.OPERATOR],
            investigator=secrets[Role.INVESTIGATOR],
        )


# -- reads ---------------------------------------------------------------------------------


def make_read(
    setup: Setup, rng: random.Random, key: EpochKey, observed: datetime, canonical: str
) -> ReadIn:
    """A read as an edge builds it: the plate's token under its epoch key, ~20% with an
    alternate reading."""
    tokens = [TokenIn(plate_token(key.key, canonical))]
    if rng.random() < ALTERNATE_FRACTION:
        tokens.append(TokenIn(plate_token(key.key, alternate_of(rng, canonical)), True))
    return ReadIn(
        read_id=random_uuid(rng),
        camera_id=rng.choice(setup.cameras),
        observed_at=observed,
        epoch_id=key.epoch_id,
        tokens=tokens,
        confidence=round(rng.uniform(0.5, 1.0), 3),
    )


def filler_reads(setup: Setup, rng: random.Random, count: int, now: datetime) -> list[ReadIn]:
    """``count`` reads of random plates spread over the window (random 16-byte tokens: they
    only have to be there, and never match)."""
    out = []
    for _ in range(count):
        key = rng.choice(setup.keys)
        tokens = [TokenIn(rng.randbytes(16))]
        if rng.random() < ALTERNATE_FRACTION:
            tokens.append(TokenIn(rng.randbytes(16), True))
        out.append(
            ReadIn(
                read_id=random_uuid(rng),
                camera_id=rng.choice(setup.cameras),
                observed_at=observed_in(rng, key, now, setup.expiry),
                epoch_id=key.epoch_id,
                tokens=tokens,
                confidence=round(rng.uniform(0.5, 1.0), 3),
            )
        )
    return out


def present_reads(setup: Setup, rng: random.Random, plates: int, now: datetime) -> list[ReadIn]:
    """Reads of ``plates`` known plates, 1-60 reads each over the window."""
    out = []
    while len(setup.present) < plates:
        canonical = canonical_plate(random_plate(rng))
        if canonical in setup.present:
            continue
        count = rng.randint(1, 60)
        setup.present[canonical] = count
        for _ in range(count):
            key = rng.choice(setup.keys)
            read = make_read(setup, rng, key, observed_in(rng, key, now, setup.expiry), canonical)
            out.append(dataclasses.replace(read, tokens=read.tokens[:1]))
    return out


def preload(setup: Setup, rng: random.Random, sizes: Sizes) -> None:
    """Store ``sizes.preload`` reads through ``Deployment.ingest`` in 5,000-read batches."""
    with Deployment.open(setup.home, actor="bench") as dep, timer() as t:
        # Reads stay inside the retention window for at least two hours after this moment,
        # so none expires while the preload and the queries run.
        now = datetime.now(UTC) + timedelta(hours=2)
        known = present_reads(setup, rng, sizes.present_plates, now)
        rng.shuffle(known)
        while setup.reads < sizes.preload:
            count = min(PRELOAD_BATCH, sizes.preload - setup.reads)
            batch = known[:count]
            del known[:count]
            batch += filler_reads(setup, rng, count - len(batch), now)
            result = store_paths.ingest(dep, batch)
            if result.inserted != len(batch):
                raise SystemExit(
                    f"[{setup.label}] preload stored {result.inserted} of {len(batch)} reads "
                    f"({result.duplicates} duplicates, {result.expired} expired)"
                )
            setup.reads += len(batch)
        if known:
            raise SystemExit(f"[{setup.label}] --preload is too small for the present plates")
    print(
        f"[{setup.label}] preload: {setup.reads:,} reads through Deployment.ingest in "
        f"{PRELOAD_BATCH:,}-read batches in {t[0]:.1f} s ({rate(setup.reads, t[0])} reads/s), "
        f"{len(setup.present):,} known plates among them, over {WINDOW_EPOCHS} daily epochs"
    )


def batch_body(reads: Sequence[ReadIn]) -> bytes:
    batch = IngestBatch.from_store(uuid.uuid4(), list(reads), [])
    return json.dumps(batch.model_dump(mode="json")).encode()


# -- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(setup: Setup) -> Iterator[str]:
    """uvicorn (one worker) serving the deployment; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        # The query benchmark asks far more than the default 25 queries a day.
        "PRIVPLATE_QUERIES__PER_USER_PER_DAY": "10000",
        "PRIVPLATE_QUERIES__PER_DEPLOYMENT_PER_DAY": "1000000",
    }
    command = [sys.executable, "-c", SERVER_CODE, str(setup.home), str(port)]
    proc = subprocess.Popen(command, env=env)  # noqa: S603 - our own interpreter and code
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"[{setup.label}] the server exited with {proc.returncode}")
            with suppress(httpx.TransportError):
                if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"[{setup.label}] the server did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def signed_post(client: httpx.Client, device: DeviceKey, path: str, body: bytes) -> httpx.Response:
    headers = {**device.sign_request("POST", path, body), "Content-Type": "application/json"}
    return client.post(path, content=body, headers=headers)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# -- 1: queries ----------------------------------------------------------------------------


def bench_queries(setup: Setup, base: str, rng: random.Random, sizes: Sizes) -> None:
    present = rng.sample(sorted(setup.present), min(len(setup.present), sizes.queries // 2))
    absent: list[str] = []
    while len(absent) < sizes.queries - len(present):
        canonical = canonical_plate(random_plate(rng))
        if canonical not in setup.present:
            absent.append(canonical)
    plan = [(p, setup.present[p]) for p in present] + [(p, 0) for p in absent]
    rng.shuffle(plan)
    now = datetime.now(UTC)
    window = {"start": setup.keys[0].starts_at.isoformat(), "end": now.isoformat()}

    def ask(client: httpx.Client, plate: str) -> int:
        body = {
            "plate": plate,
            **window,
            "purpose": "stolen-vehicle",
            "case_number": "BENCH-2026-0001",
            "justification": "Benchmark of the query path; vehicle reported stolen.",
        }
        answer = client.post("/queries", json=body, headers=bearer(setup.investigator))
        if answer.status_code != 200:
            raise SystemExit(
                f"[{setup.label}] query answered {answer.status_code}: {answer.text[:200]}"
            )
        return len(answer.json()["matches"])

    hit_ms: list[float] = []
    miss_ms: list[float] = []
    wrong = 0
    with httpx.Client(base_url=base, timeout=60.0) as client:
        for plate, _ in plan[:WARMUP]:
            ask(client, plate)
        for plate, expected in plan:
            t0 = time.perf_counter()
            found = ask(client, plate)
            (hit_ms if expected else miss_ms).append((time.perf_counter() - t0) * 1e3)
            wrong += found != expected
    every = sorted(hit_ms + miss_ms)
    hit_ms.sort()
    miss_ms.sort()
    print(
        f"[{setup.label}] POST /queries over HTTP, {setup.reads:,} reads stored, "
        f"{WINDOW_EPOCHS}-epoch window, {len(plan):,} queries ({len(hit_ms):,} present, "
        f"{len(miss_ms):,} absent):"
    )
    print(
        f"[{setup.label}]   all: p50 {percentile(every, 50):.2f} ms, p99 "
        f"{percentile(every, 99):.2f} ms, max {every[-1]:.2f} ms, mean "
        f"{statistics.fmean(every):.2f} ms"
    )
    print(
        f"[{setup.label}]   present: p50 {percentile(hit_ms, 50):.2f} ms, p99 "
        f"{percentile(hit_ms, 99):.2f} ms; absent: p50 {percentile(miss_ms, 50):.2f} ms, "
        f"p99 {percentile(miss_ms, 99):.2f} ms"
    )
    if wrong:
        print(f"[{setup.label}]   WARNING: {wrong} queries returned an unexpected number of reads")


# -- 2: ingest -----------------------------------------------------------------------------


def bench_ingest(setup: Setup, base: str, rng: random.Random, sizes: Sizes) -> None:
    """Time-ordered batches of what the edge just saw, in the current epoch."""
    with Deployment.open(setup.home, actor="bench") as dep:
        key = dep.keyring.current_key()
    total = sizes.ingest_batches + WARMUP
    now = datetime.now(UTC)
    lo = max(key.starts_at, now - timedelta(hours=1))
    step = (now - timedelta(seconds=1) - lo) / (total * HTTP_BATCH)
    bodies = []
    for b in range(total):
        reads = [
            make_read(
                setup,
                rng,
                key,
                lo + (b * HTTP_BATCH + i) * step,
                canonical_plate(random_plate(rng)),
            )
            for i in range(HTTP_BATCH)
        ]
        bodies.append(batch_body(reads))
    ms: list[float] = []
    with httpx.Client(base_url=base, timeout=60.0) as client:
        t_all = 0.0
        for i, body in enumerate(bodies):
            t0 = time.perf_counter()
            answer = signed_post(client, setup.device, "/ingest", body)
            elapsed = time.perf_counter() - t0
            if answer.status_code != 200 or answer.json()["inserted"] != HTTP_BATCH:
                raise SystemExit(
                    f"[{setup.label}] ingest answered {answer.status_code}: {answer.text[:200]}"
                )
            if i >= WARMUP:
                t_all += elapsed
                ms.append(elapsed * 1e3)
    setup.reads += total * HTTP_BATCH
    n = sizes.ingest_batches * HTTP_BATCH
    ms.sort()
    print(
        f"[{setup.label}] ingest over HTTP, {sizes.ingest_batches:,} signed batches x "
        f"{HTTP_BATCH} reads ({ALTERNATE_FRACTION:.0%} with an alternate), one client, "
        f"one uvicorn worker: {rate(n, t_all)} reads/s; per batch p50 "
        f"{percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms"
    )


# -- 3: alerts -----------------------------------------------------------------------------


class Console(threading.Thread):
    """Reads ``GET /alerts/stream`` and notes when each alert id arrives.

    A plain socket rather than an HTTP client, so that :meth:`close` can hang up at once from
    another thread (the server then ends the stream)."""

    def __init__(self, base: str, secret: str) -> None:
        super().__init__(daemon=True)
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 80
        self.sock = socket.create_connection((self.host, self.port), timeout=10.0)
        self.sock.settimeout(None)
        self.request = (
            f"GET /alerts/stream HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {secret}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        self.connected = threading.Event()
        self.arrived: dict[int, float] = {}
        self.cond = threading.Condition()
        self.stop = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.sock.sendall(self.request)
            stream = self.sock.makefile("rb")
            status = stream.readline()
            if b" 200 " not in status:
                raise RuntimeError(f"the stream answered {status!r}")
            current: int | None = None
            # Chunked transfer encoding: each event is one chunk, so the chunk-size lines are
            # simply lines that are neither "id:" nor "data:".
            while line := stream.readline():
                if line.startswith(b": connected"):
                    self.connected.set()
                elif line.startswith(b"id: "):
                    current = int(line[4:])
                elif line.startswith(b"data: ") and current is not None:
                    with self.cond:
                        self.arrived[current] = time.perf_counter()
                        self.cond.notify_all()
                    current = None
        except BaseException as exc:
            if not self.stop:
                self.error = exc
        finally:
            self.connected.set()
            with self.cond:
                self.cond.notify_all()

    def close(self) -> None:
        self.stop = True
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.join(timeout=5)
        self.sock.close()

    def wait_for(self, alert_id: int, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while alert_id not in self.arrived and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.arrived.get(alert_id)


def bench_alerts(setup: Setup, base: str, rng: random.Random, sizes: Sizes) -> None:
    plate = canonical_plate(random_plate(rng))
    with httpx.Client(base_url=base, timeout=60.0) as client:
        for path, body in (
            ("/hotlists", {"name": HOTLIST, "source": "local-bolo"}),
            (
                f"/hotlists/{HOTLIST}/entries",
                {"entries": [{"plate": plate, "reason": "benchmark", "case_number": "BENCH-1"}]},
            ),
        ):
            answer = client.post(path, json=body, headers=bearer(setup.operator))
            if answer.status_code != 201:
                raise SystemExit(f"[{setup.label}] {path} answered {answer.status_code}")
        with Deployment.open(setup.home, actor="bench") as dep:
            key = dep.keyring.current_key()
        console = Console(base, setup.operator)
        console.start()
        if not console.connected.wait(10.0) or console.error is not None or not console.is_alive():
            raise SystemExit(f"[{setup.label}] the alert stream did not connect: {console.error}")
        total_ms: list[float] = []
        post_ms: list[float] = []
        missed = 0
        for i in range(sizes.alerts + WARMUP):
            read = make_read(setup, rng, key, datetime.now(UTC) - timedelta(seconds=1), plate)
            body = batch_body([read])
            t0 = time.perf_counter()
            answer = signed_post(client, setup.device, "/ingest", body)
            t_post = time.perf_counter()
            alerts = answer.json().get("alerts", []) if answer.status_code == 200 else []
            if len(alerts) != 1:
                raise SystemExit(
                    f"[{setup.label}] a hotlisted read raised {len(alerts)} alerts "
                    f"({answer.status_code})"
                )
            arrived = console.wait_for(alerts[0], ALERT_WAIT_SECONDS)
            if arrived is None:
                missed += 1
                continue
            if i >= WARMUP:
                total_ms.append((arrived - t0) * 1e3)
                post_ms.append((t_post - t0) * 1e3)
        console.close()
    setup.reads += sizes.alerts + WARMUP
    total_ms.sort()
    post_ms.sort()
    print(
        f"[{setup.label}] ingest-to-SSE alert latency, {len(total_ms):,} signed one-read "
        f"batches hitting a hotlist entry, one console on /alerts/stream: p50 "
        f"{percentile(total_ms, 50):.1f} ms, p95 {percentile(total_ms, 95):.1f} ms, max "
        f"{total_ms[-1]:.1f} ms (the POST itself: p50 {percentile(post_ms, 50):.1f} ms, "
        f"p95 {percentile(post_ms, 95):.1f} ms)"
    )
    if missed:
        print(f"[{setup.label}]   WARNING: {missed} alerts never reached the stream")


# -- runs ----------------------------------------------------------------------------------


def run_backend(label: str, database_url: str, home: Path, sizes: Sizes, seed: int) -> None:
    rng = random.Random(f"{seed}-{label}")
    today = datetime.now(UTC)
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    setup = prepare(label, home, database_url, midnight)
    preload(setup, rng, sizes)
    with server(setup) as base:
        bench_queries(setup, base, rng, sizes)
        bench_ingest(setup, base, rng, sizes)
        bench_alerts(setup, base, rng, sizes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run (under a minute)"
    )
    parser.add_argument("--preload", type=int, help="reads stored before the queries are timed")
    parser.add_argument("--ingest-batches", type=int, help="timed HTTP ingest batches")
    parser.add_argument("--queries", type=int, help="timed queries (half present, half absent)")
    parser.add_argument("--alerts", type=int, help="timed ingest-to-SSE alerts")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also run on this PostgreSQL server (in a fresh schema, dropped at the end)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    # On SIGTERM, unwind normally so the server, temporary directory and schema go away.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))

    base = QUICK if args.quick else FULL
    sizes = dataclasses.replace(
        base,
        **{
            name: value
            for name, value in {
                "preload": args.preload,
                "ingest_batches": args.ingest_batches,
                "queries": args.queries,
                "alerts": args.alerts,
            }.items()
            if value is not None
        },
    )
    print(
        f"privplate server benchmarks ({'quick' if args.quick else 'full'}): python "
        f"{platform.python_version()}, sqlite {sqlean.sqlite_version}, {os.cpu_count()} CPUs; "
        f"{sizes}"
    )
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="privplate-bench-server-") as tmp:
        if not args.no_sqlite:
            run_backend("sqlite", "sqlite:///privplate.db", Path(tmp) / "sqlite", sizes, args.seed)
        if args.postgres and (version := postgres_version(args.postgres)):
            print(f"[postgres] server {version}")
            with postgres_schema(args.postgres) as url:
                run_backend("postgres", url, Path(tmp) / "postgres", sizes, args.seed)
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
