"""Enrolling an edge box: how long code creation and `privplate edge enrol` take, end to end.

Against a real server (`privplate serve` in a subprocess, SQLite or ``--postgres``), each of
``--rounds`` rounds

1. runs ``privplate devices enrol-code --camera gate-1`` as the administrator would (a process
   of its own: interpreter start, settings, database, audit entry);
2. runs ``privplate edge enrol --server URL --code CODE --server-key K`` into a fresh box
   directory, as on the device (a process: key generation, the signed enrol request, the
   check of the server's signed epoch key answer, the files written);
3. the same two steps in this process (``privplate.devices.enrolment.create_code`` and
   ``privplate.edge.enrolment.enrol``), which leaves out the interpreter's start and the
   imports, and on its own the identity check (one signed ``GET /device/epoch``, verified).

It prints the median and the range of each, in milliseconds. Only times are printed; no code,
key or plate.

    .venv/bin/python benchmarks/enrolment.py --quick          # 5 rounds
    .venv/bin/python benchmarks/enrolment.py --rounds 20
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from core import postgres_schema  # benchmarks/core.py, next to this script

from privplate.deployment import Deployment, init_deployment
from privplate.devices import enrolment
from privplate.edge.enrolment import enrol, pinned_server_key
from privplate.edge.runtime import read_device_key
from privplate.edge.uplink import DeviceClient, ServerIdentity
from privplate.server_secret import ServerSecret, read_server_secret
from privplate.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
PRIVPLATE = str(ROOT / ".venv" / "bin" / "privplate")
CODE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{5}(?:-[0-9A-HJKMNP-TV-Z]{5}){3}\b")
VKEY = re.compile(r"server key: (\S+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")}


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _cli(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own command
        [PRIVPLATE, *args], capture_output=True, text=True, env=_env(), check=False, timeout=120
    )
    if done.returncode != 0:
        raise SystemExit(f"privplate {args[0]} {args[1]} failed: {done.stderr[-500:]}")
    return done.stdout


def _report(label: str, values: list[float]) -> None:
    print(
        f"{label:<44} median {statistics.median(values):7.1f} ms  "
        f"(min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"
    )


def run(home: Path, database_url: str, rounds: int) -> None:
    init_deployment(home, database_url=database_url)
    _cli("cameras", "add", "gate-1", "--dir", str(home))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**_env(), "PRIVPLATE_SERVER__RUN_PURGE_SCHEDULER": "false"}
    server = subprocess.Popen(  # noqa: S603
        [PRIVPLATE, "serve", "--dir", str(home), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        _measure(home, url, rounds)
    finally:
        server.terminate()
        server.wait(30)


def _measure(home: Path, url: str, rounds: int) -> None:
    boxes = home.parent / "boxes"
    figures: dict[str, list[float]] = {
        "devices enrol-code (CLI process)": [],
        "edge enrol (CLI process)": [],
        "both (CLI processes)": [],
        "create_code (in process)": [],
        "edge enrol (in process)": [],
        "identity check: signed GET /device/epoch": [],
    }
    with Deployment.open(home, actor="bench") as dep:
        secret = read_server_secret(dep.settings.server_secret_path)
        for i in range(rounds):
            for label, ms in _round(home, url, dep, secret, boxes, i).items():
                figures[label].append(ms)
    backend = database_backend(home)
    print(f"{backend}, {rounds} rounds, cpu cores {os.cpu_count()}")
    for label, values in figures.items():
        _report(label, values)


def _round(
    home: Path, url: str, dep: Deployment, secret: ServerSecret, boxes: Path, i: int
) -> dict[str, float]:
    started = time.perf_counter()
    out = _cli("devices", "enrol-code", "--camera", "gate-1", "--dir", str(home))
    made = _since(started)
    code, vkey = CODE.search(out), VKEY.search(out)
    if code is None or vkey is None:
        raise SystemExit("`privplate devices enrol-code` printed no code or server key")
    started = time.perf_counter()
    _cli(
        "edge", "enrol", "--server", url, "--code", code.group(0), "--server-key",
        vkey.group(1), "--device-id", f"edge-cli-{i}", "--dir", str(boxes / f"cli-{i}"),
    )  # fmt: skip
    enrolled = _since(started)

    started = time.perf_counter()
    issued = enrolment.create_code(
        db=dep.db, audit=dep.audit, secret=secret, actor="bench", cameras=["gate-1"]
    )
    created = _since(started)
    box = boxes / f"lib-{i}"
    started = time.perf_counter()
    enrol(
        load_settings(box),
        server_url=url,
        code=issued.code,
        device_id=f"edge-lib-{i}",
        server_key=vkey.group(1),
    )
    enrolled_here = _since(started)
    settings = load_settings(box)
    identity = ServerIdentity(
        DeviceClient(url, read_device_key(settings.path(settings.edge.device_key_file))),
        pinned_server_key(settings),
    )
    started = time.perf_counter()
    identity.fetch_epoch()
    proved = _since(started)
    return {
        "devices enrol-code (CLI process)": made,
        "edge enrol (CLI process)": enrolled,
        "both (CLI processes)": made + enrolled,
        "create_code (in process)": created,
        "edge enrol (in process)": enrolled_here,
        "identity check: signed GET /device/epoch": proved,
    }


def database_backend(home: Path) -> str:
    with Deployment.open(home, actor="bench") as dep:
        return dep.db.engine.dialect.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 rounds")
    parser.add_argument("--postgres", default="", help="a PostgreSQL URL (a fresh schema)")
    args = parser.parse_args()
    rounds = 5 if args.quick else args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "deployment"
        if args.postgres:
            with postgres_schema(args.postgres) as url:
                run(home, url, rounds)
        else:
            run(home, f"sqlite:///{home / 'privplate.db'}", rounds)


if __name__ == "__main__":
    main()
