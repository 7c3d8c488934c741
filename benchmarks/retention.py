"""Retention benchmarks: purge 1M expired reads out of 3M.

    python benchmarks/retention.py [--total 3000000] [--postgres-url URL] [--quick]

SQLite: total purge time and the longest write-lock hold the purge measured in each of its
steps (batched deletes, vacuum, zeroing of free space, checkpoint), and, as a writer sees it,
the latency of one-read ingests made by a second process every 20 ms while the purge runs,
next to the same ingests without a purge. PostgreSQL, in the same run: the purge (whole-partition
drops) against a plain row DELETE + VACUUM of the same rows on an identical copy. Prints figures
only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import store_paths
from sqlalchemy import create_engine, text

from privplate.deployment import Deployment, init_deployment
from privplate.retention.purge import purge
from privplate.store import ReadIn, TokenIn
from privplate.store.bulk import ReadRow, copy_reads_postgres, insert_reads_sqlite
from privplate.store.partitions import day_of

DAYS = 45  # reads spread evenly; with the 30-day preset the oldest 15 days (1/3) expire


def fill(dep: Deployment, total: int, now: datetime) -> int:
    """Store ``total`` reads spread over DAYS days; returns how many are past the window."""
    dep.add_camera("bench-cam")
    start = now - timedelta(days=DAYS)
    keys = {
        k.epoch_id: k
        for k in (dep.keyring.current_key(start + timedelta(days=d)) for d in range(DAYS + 1))
    }
    span = int(
        next(iter(keys.values())).ends_at.timestamp()
        - next(iter(keys.values())).starts_at.timestamp()
    )
    if dep.db.is_postgres:
        dep.db.ensure_partitions({day_of(start + timedelta(days=d)) for d in range(DAYS + 1)})
    step = timedelta(days=DAYS) / total
    cutoff = now - dep.settings.retention_window("non_hit_reads")
    expired, batch = 0, []
    for i in range(total):
        t = start + step * i
        epoch = keys[int(t.timestamp()) // span * span]
        expired += t < cutoff
        batch.append(
            (
                uuid.uuid4(),
                os.urandom(16),
                t,
                epoch.epoch_id,
                False,
                False,
                "bench-cam",
                t + timedelta(days=30),
                0.9,
                None,
            )
        )
        if len(batch) == 50_000 or i == total - 1:
            write(dep, batch)
            batch = []
    return expired


def write(dep: Deployment, rows: list[ReadRow]) -> None:
    with dep.db.write() as conn:
        if dep.db.is_postgres:
            copy_reads_postgres(conn, rows)
        else:
            insert_reads_sqlite(conn, rows)


def ingest_probe(home: Path, stop: Any, out: Any) -> None:
    """In its own process (no shared GIL): ingest one read every 20 ms, time each call."""
    latencies = []
    with Deployment.open(home, actor="probe") as dep:
        while not stop.is_set():
            t = datetime.now(UTC)
            key = dep.keyring.current_key(t)
            read = ReadIn(
                read_id=uuid.uuid4(),
                camera_id="bench-cam",
                observed_at=t,
                epoch_id=key.epoch_id,
                tokens=[TokenIn(os.urandom(16))],
                confidence=0.9,
            )
            started = time.perf_counter()
            store_paths.ingest(dep, [read], now=t)
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)
    out.put(latencies)


def with_probe(home: Path, work: Any) -> tuple[Any, list[float]]:
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=ingest_probe, args=(home, stop, out))
    proc.start()
    time.sleep(2.0)  # the probe's start-up (imports, first connection) is not measured
    try:
        result = work()
    finally:
        stop.set()
    latencies: list[float] = out.get(timeout=60)
    proc.join(timeout=60)
    return result, latencies[5:]


def describe(latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return (
        f"{len(latencies)} ingests, p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )


def sqlite_run(args: argparse.Namespace, workdir: Path, now: datetime) -> None:
    home = workdir / "sqlite"
    init_deployment(home)
    with Deployment.open(home, actor="bench") as dep:
        t0 = time.perf_counter()
        expired = fill(dep, args.total, now)
        print(
            f"[sqlite] stored {args.total:,} reads ({expired:,} past the window) in "
            f"{time.perf_counter() - t0:.0f} s"
        )
        _, quiet = with_probe(home, lambda: time.sleep(10))
        report, busy = with_probe(home, lambda: purge(dep, now=now))
        size = sum(p.stat().st_size for p in home.glob("privplate.db*"))
        print(
            f"[sqlite] purge: {report.reads_total:,} rows deleted in {report.seconds:.1f} s "
            f"({report.reads_total / report.seconds:,.0f} rows/s), longest write lock "
            f"{report.longest_lock_ms:.0f} ms ("
            + ", ".join(f"{k} {v:.0f}" for k, v in report.lock_ms.items())
            + f"), {len(report.epochs_destroyed)} epoch keys "
            f"destroyed, {report.pages_scrubbed:,} pages' free space zeroed; phases "
            + ", ".join(f"{k} {v:.2f} s" for k, v in report.phases.items())
            + f"; database + WAL now {size / 1e6:.0f} MB"
        )
        print(f"[sqlite] one-read ingest from another process, no purge: {describe(quiet)}")
        print(f"[sqlite] one-read ingest from another process, during the purge: {describe(busy)}")


def pg_schema_url(base: str, schema: str) -> str:
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def drop_schema(base: str, schema: str) -> None:
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def postgres_run(args: argparse.Namespace, workdir: Path, now: datetime) -> None:
    results = {}
    for variant in ("partition-drop", "row-delete"):
        schema = f"bench_ret_{variant.replace('-', '_')}"
        home = workdir / schema
        init_deployment(home, database_url=pg_schema_url(args.postgres_url, schema))
        try:
            with Deployment.open(home, actor="bench") as dep:
                t0 = time.perf_counter()
                expired = fill(dep, args.total, now)
                with dep.db.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                ) as conn:
                    conn.exec_driver_sql("VACUUM ANALYZE reads")
                print(
                    f"[postgres/{variant}] stored {args.total:,} reads ({expired:,} past the "
                    f"window) in {time.perf_counter() - t0:.0f} s"
                )
                cutoff = now - dep.settings.retention_window("non_hit_reads")
                if variant == "partition-drop":
                    report = purge(dep, now=now)
                    results[variant] = report.phases["reads"]
                    print(
                        f"[postgres/{variant}] purge: {report.reads_total:,} rows; dropping "
                        f"{len(report.partitions_dropped)} partitions took "
                        f"{report.phases['reads'] * 1000:,.0f} ms (whole run "
                        f"{report.seconds * 1000:,.0f} ms incl. evidence and boundary deletes "
                        f"{report.phases['evidence'] * 1000:,.0f} ms, key destruction "
                        f"{report.phases['keys'] * 1000:,.0f} ms); the parent table was locked "
                        f"(DETACH) for {report.lock_ms.get('detach:reads', 0):,.0f} ms"
                    )
                else:
                    t0 = time.perf_counter()
                    with dep.db.write() as conn:
                        n = conn.execute(
                            text("DELETE FROM reads WHERE observed_at < :c"), {"c": cutoff}
                        ).rowcount
                    with dep.db.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    ) as conn:
                        conn.exec_driver_sql("VACUUM reads")
                    results[variant] = time.perf_counter() - t0
                    print(
                        f"[postgres/{variant}] DELETE + VACUUM: {n:,} rows in "
                        f"{results[variant] * 1000:,.0f} ms"
                    )
        finally:
            drop_schema(args.postgres_url, schema)
    print(
        f"[postgres] row DELETE + VACUUM / partition-drop purge = "
        f"{results['row-delete'] / results['partition-drop']:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total", type=int, default=3_000_000)
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--quick", action="store_true", help="90k reads, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.total = 90_000
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_run(args, Path(tmp), now)
        if not args.no_postgres:
            postgres_run(args, Path(tmp), now)


if __name__ == "__main__":
    main()
