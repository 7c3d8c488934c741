"""Witness cosign round trip against a real `privplate serve` (a child process on 127.0.0.1):
fetch the checkpoint, fetch and verify the consistency proof from the last one seen, cosign,
post the cosignature (the server verifies it, stores it and appends an audit entry).

    python benchmarks/witness.py [--entries 10000] [--rounds 200] [--postgres-url URL]

Before each round the log grows by one entry and a checkpoint is signed (not timed), so every
round proves consistency between two different sizes, as a witness does in production.
Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from privplate.audit.cosignature import Cosigner
from privplate.audit.witness import Witness, create_witness_key
from privplate.deployment import Deployment, init_deployment

PRIVPLATE = str(Path(sys.executable).parent / "privplate")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _fill(home: Path, entries: int) -> None:
    with Deployment.open(home, actor="bench") as dep:
        missing = max(0, entries - dep.audit.size())
        with dep.db.write() as conn:
            for n in range(missing):
                dep.audit.append(conn, actor="bench", action="bench.filled", details={"n": n})
        dep.audit.sign_if_grown()


def _deployment(root: Path, url: str, entries: int) -> tuple[Path, Cosigner]:
    home = root / "deployment"
    init_deployment(home, database_url=url or f"sqlite:///{home / 'privplate.db'}")
    cosigner = create_witness_key(root / "witness.key", "bench.example/witness")
    config = home / "privplate.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f"\n[audit]\ncheckpoint_interval_minutes = 0\nwitnesses = "
        f"{json.dumps([cosigner.vkey()])}\n\n[server]\nrun_purge_scheduler = false\n",
        encoding="utf-8",
    )
    _fill(home, entries)
    return home, cosigner


@contextmanager
def _served(home: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")}
    argv = [PRIVPLATE, "serve", "--dir", str(home), "--port", str(port), "--log-level", "error"]
    server = subprocess.Popen(argv, env=env)  # noqa: S603 - our own command line
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def _rounds(
    dep: Deployment, witness: Witness, count: int
) -> tuple[list[float], dict[str, list[float]]]:
    """Each round's whole time, and each request's (by the last part of its path)."""
    parts: dict[str, list[float]] = defaultdict(list)
    call = witness._call

    def timed(path: str, body: bytes | None = None) -> str:
        start = time.perf_counter()
        try:
            return call(path, body)
        finally:
            name = path.split("?", maxsplit=1)[0].rsplit("/", 1)[-1]
            parts[name].append(time.perf_counter() - start)

    witness._call = timed  # type: ignore[method-assign]  # timing each request
    witness.run_once()  # the first sight: no proof to fetch
    parts.clear()
    rounds: list[float] = []
    for n in range(count):
        dep.audit.record(actor="bench", action="bench.grew", details={"n": n})
        dep.audit.sign_if_grown()
        start = time.perf_counter()
        done = witness.run_once()
        rounds.append(time.perf_counter() - start)
        if done.recorded != "new":
            raise RuntimeError(f"round {n} was not recorded as new: {done}")
    return rounds, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=10_000, help="log size before round 1")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--postgres-url", default="", help="run on PostgreSQL instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home, cosigner = _deployment(root, args.postgres_url, args.entries)
        with _served(home) as url, Deployment.open(home, actor="bench") as dep:
            witness = Witness(
                server=url,
                log_key=dep.audit.signer.note_verifier.vkey(),
                cosigner=cosigner,
                state_path=root / "state.json",
            )
            rounds, parts = _rounds(dep, witness, args.rounds)
            size = dep.audit.size()
    database = "PostgreSQL" if args.postgres_url else "SQLite"
    print(f"witness cosign round trip, {args.rounds} rounds, log of {args.entries}..{size}")
    print(f"entries, {database}, privplate serve on 127.0.0.1 (one uvicorn worker):")
    for label, values in (("whole round", rounds), *sorted(parts.items())):
        ms = [v * 1000 for v in values]
        print(
            f"  {label:<12} p50 {statistics.median(ms):6.2f} ms   p99 {_percentile(ms, 0.99):6.2f}"
            f" ms   mean {statistics.fmean(ms):6.2f} ms"
        )


if __name__ == "__main__":
    main()
