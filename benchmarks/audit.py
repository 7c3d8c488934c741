"""Audit log benchmarks: appends per second, proof times and full verification at scale.

    python benchmarks/audit.py [--entries 1000000] [--appends 20000] [--postgres-url URL]

Prints figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from privplate.audit import verify_log
from privplate.audit.entries import Entry, encode_entry
from privplate.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from privplate.deployment import Deployment, init_deployment
from privplate.store.models import AuditEntry


def measure_records(dep: Deployment, count: int) -> float:
    """Standalone entries, each in its own transaction (AuditLog.record)."""
    start = time.perf_counter()
    for n in range(count):
        dep.audit.record(
            actor="bench:operator", action="camera.added", details={"camera": f"cam-{n}", "n": n}
        )
    return count / (time.perf_counter() - start)


def measure_appends(dep: Deployment, count: int, per_txn: int) -> float:
    start = time.perf_counter()
    done = 0
    while done < count:
        with dep.db.write() as conn:
            for _ in range(per_txn):
                dep.audit.append(
                    conn,
                    actor="bench:operator",
                    action="camera.added",
                    details={"camera": f"cam-{done}", "n": done},
                )
                done += 1
    return count / (time.perf_counter() - start)


def bulk_fill(dep: Deployment, total: int) -> None:
    """Fill the log to ``total`` entries quickly (same rows append would write)."""
    signer = dep.audit.signer
    start = dep.audit.size()
    table = AuditEntry.__table__
    batch: list[dict[str, object]] = []
    now = datetime.now(UTC)
    for seq in range(start, total):
        data = encode_entry(Entry(seq, now, "bench:fill", "query.made", {"case": f"C-{seq}"}))
        leaf = leaf_hash(data)
        batch.append(
            {
                "seq": seq,
                "created_at": now,
                "actor": "bench:fill",
                "action": "query.made",
                "entry": data,
                "leaf_hash": leaf,
                "mac": signer.entry_mac(seq, leaf),
            }
        )
        if len(batch) == 20_000 or seq == total - 1:
            with dep.db.write() as conn:
                conn.execute(insert(table), batch)
            batch = []


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run(label: str, url: str, args: argparse.Namespace, workdir: Path) -> None:
    home = workdir / label
    init_deployment(home, database_url=url)
    with Deployment.open(home, actor="bench") as dep:
        alone = measure_records(dep, args.appends)
        one = measure_appends(dep, args.appends, 1)
        batched = measure_appends(dep, args.appends, 100)
        print(f"[{label}] appends/s, standalone entries (record): {alone:,.0f}")
        print(f"[{label}] appends/s, one per action transaction: {one:,.0f}")
        print(f"[{label}] appends/s, 100 per transaction:  {batched:,.0f}")
        t0 = time.perf_counter()
        bulk_fill(dep, args.entries)
        print(f"[{label}] filled to {args.entries:,} entries in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        tree = dep.audit.tree()
        print(f"[{label}] tree load (cold, {tree.size:,} leaves): {time.perf_counter() - t0:.2f} s")
        size = tree.size
        rng = random.Random(7)
        incl, cons, verify_t = [], [], []
        for _ in range(args.samples):
            seq = rng.randrange(size)
            t0 = time.perf_counter()
            proof = dep.audit.inclusion_proof(seq)
            incl.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            verify_inclusion(dep.audit.leaf(seq), seq, size, proof, tree.root())
            verify_t.append((time.perf_counter() - t0) * 1000)
            old = rng.randrange(1, size)
            t0 = time.perf_counter()
            cproof = dep.audit.consistency_proof(old)
            cons.append((time.perf_counter() - t0) * 1000)
            verify_consistency(old, size, tree.root(old), tree.root(), cproof)
        for name, values in (
            ("inclusion proof", incl),
            ("consistency proof", cons),
            ("leaf fetch + inclusion verify", verify_t),
        ):
            print(
                f"[{label}] {name} at {size:,}: p50 {statistics.median(values):.3f} ms, "
                f"p99 {percentile(values, 99):.3f} ms"
            )
        dep.audit.checkpoint()
        t0 = time.perf_counter()
        report = verify_log(dep.db, dep.audit.signer, stored=dep.audit.checkpoints())
        elapsed = time.perf_counter() - t0
        print(
            f"[{label}] full verification of {report.entries:,} entries: {elapsed:.1f} s "
            f"({'ok' if report.ok else report.problems[0]})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=2_000)
    parser.add_argument("--postgres-url", default="")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.appends, args.samples = 20_000, 2_000, 200
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{Path(tmp) / 'audit.db'}", args, Path(tmp))
        if args.postgres_url:
            run("postgresql", args.postgres_url, args, Path(tmp))


if __name__ == "__main__":
    main()
