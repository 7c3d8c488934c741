"""Device health reports: their size, and what they cost the server per 1,000 devices.

Measures, on this machine:

1. the report's size: the JSON body exactly as ``privplate.edge.health.HealthReporter`` sends
   it for a device with 10 cameras (and the four signature headers on top);
2. the server's CPU per report: signed ``POST /devices/health`` from ``--devices`` devices of
   10 cameras each, two rounds (the first inserts each device's rows, the second replaces
   them, as every later minute does), against one uvicorn worker in a subprocess; CPU is the
   server process's user + system time (``/proc/PID/stat``) over the run, divided by the
   reports sent, and turned into cores per 1,000 devices at one report a minute;
3. the leader's check (silent cameras, spool backlogs) over all those devices: CPU per run.

    .venv/bin/python benchmarks/health.py --quick      # 100 devices
    .venv/bin/python benchmarks/health.py              # 1,000 devices (10,000 cameras)
    .venv/bin/python benchmarks/health.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from core import postgres_schema  # benchmarks/core.py, next to this script
from sqlalchemy import insert

from privplate.deployment import Deployment, init_deployment
from privplate.devices import DeviceKey
from privplate.edge.health import HealthReporter
from privplate.edge.uplink import DeviceClient
from privplate.store.models import Camera
from privplate.store.server_models import Device, DeviceCamera

CAMERAS = 10
SHA = "0123456789abcdef" * 4
TICKS = os.sysconf("SC_CLK_TCK")


class _Cam:
    def __init__(self, camera_id: str) -> None:
        now = datetime.now(UTC)
        self.camera_id = camera_id
        self.frames_per_second = 12.437
        self.last_frame_at: datetime | None = now
        self.last_read_at: datetime | None = now - timedelta(seconds=41.123456)
        self.dropped_reads = 3


class _Spool:
    def depth(self) -> int:
        return 17

    def oldest_age(self, now: float | None = None) -> float | None:  # noqa: ARG002
        return 2.4


def reporter(url: str, key: DeviceKey, cameras: list[str]) -> HealthReporter:
    return HealthReporter(
        DeviceClient(url, key),
        cameras=lambda: [_Cam(c) for c in cameras],
        spool=_Spool(),
        models={
            "yolov8n-plate-640.onnx": SHA,
            "cct_xs_v1_global.onnx": SHA,
            "cct_xs_v1_global_plate_config.yaml": SHA,
        },
        clock_offset=lambda: 0.012,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _fleet(dep: Deployment, devices: int) -> list[tuple[DeviceKey, list[str]]]:
    """``devices`` registered devices of CAMERAS cameras each (bulk rows: set-up only)."""
    now = datetime.now(UTC)
    fleet = []
    for d in range(devices):
        key = DeviceKey.generate(f"edge-{d:05d}")
        fleet.append((key, [f"cam-{d:05d}-{c}" for c in range(CAMERAS)]))
    with dep.db.write() as conn:
        conn.execute(
            insert(Camera),
            [
                {"id": c, "name": "", "created_at": now, "active": True}
                for _, cs in fleet
                for c in cs
            ],
        )
        conn.execute(
            insert(Device),
            [
                {
                    "id": k.device_id,
                    "name": "",
                    "public_key": k.public_key,
                    "created_at": now,
                    "created_by": "bench",
                }
                for k, _ in fleet
            ],
        )
        conn.execute(
            insert(DeviceCamera),
            [{"device_id": k.device_id, "camera_id": c} for k, cs in fleet for c in cs],
        )
    return fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 devices")
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL (a fresh schema)")
    args = parser.parse_args()
    devices = 100 if args.quick else args.devices

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "deployment"
        if args.postgres:
            with postgres_schema(args.postgres) as url:
                run(home, url, devices)
        else:
            run(home, f"sqlite:///{home / 'privplate.db'}", devices)


def run(home: Path, database_url: str, devices: int) -> None:
    init_deployment(home, database_url=database_url)
    with Deployment.open(home, actor="bench") as dep:
        fleet = _fleet(dep, devices)
        backend = dep.db.engine.dialect.name

    sample = reporter("http://127.0.0.1:1", fleet[0][0], fleet[0][1])
    body = sample.body()
    headers = sample.client.key.sign_request("POST", "/devices/health", body)
    header_bytes = sum(len(k) + len(v) + 4 for k, v in headers.items())
    print(
        f"report of {CAMERAS} cameras: {len(body)} bytes of JSON "
        f"(+{header_bytes} bytes of signature headers)"
    )

    _serve_and_measure(home, fleet, backend, devices)

    with Deployment.open(home, actor="bench") as dep:
        from privplate.services import Services  # noqa: PLC0415

        services = Services(dep)
        try:
            for label, at in (("all well", None), ("all silent", timedelta(hours=1))):
                moment = datetime.now(UTC) + (at or timedelta())
                started = time.process_time()
                written = services.check_device_health(now=moment)
                cpu = (time.process_time() - started) * 1000
                print(
                    f"{backend}, leader's check of {devices} devices ({label}): "
                    f"{cpu:.0f} ms CPU in this process, {len(written)} alerts written"
                )
        finally:
            services.close()


def _serve_and_measure(
    home: Path, fleet: list[tuple[DeviceKey, list[str]]], backend: str, devices: int
) -> None:
    port = _free_port()
    code = (
        "import uvicorn, sys; from privplate.api import create_app; "
        f"uvicorn.run(create_app(sys.argv[1], run_scheduler=False), host='127.0.0.1', "
        f"port={port}, log_level='warning')"
    )
    server = subprocess.Popen([sys.executable, "-c", code, str(home)])  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not become ready")
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=30) as client:
            for round_ in ("first (insert)", "later (replace)"):
                # Signed before the clock starts: the edge's cost, not the server's.
                signed = []
                for key, cameras in fleet:
                    b = reporter(base, key, cameras).body()
                    signed.append((b, key.sign_request("POST", "/devices/health", b)))
                before, started = _cpu_seconds(server.pid), time.perf_counter()
                for b, h in signed:
                    answer = client.post(
                        "/devices/health",
                        content=b,
                        headers={**h, "Content-Type": "application/json"},
                    )
                    answer.raise_for_status()
                cpu = _cpu_seconds(server.pid) - before
                wall = time.perf_counter() - started
                per = cpu / len(signed) * 1000
                print(
                    f"{backend}, {round_} reports of {devices} devices: server CPU "
                    f"{per:.2f} ms per report ({len(signed) / wall:.0f} reports/s on one "
                    f"worker); at one report a minute, {per * 1000 / 60_000:.3f} cores "
                    f"per 1,000 devices"
                )
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
