"""City load on PostgreSQL: a simulated fleet (default 2,000 cameras on 200 signed devices, each
device its own spool and uplink) sending real signed batches to `privplate serve --workers N`,
with the purge leader deleting the run's own expired reads as it goes, investigators asking plate
queries, an operator's live alert stream and two webhook endpoints; then faults during load.

Phases, all in one run on one private PostgreSQL (tests/pg_cluster.py):

1. scaling: the fleet offers more than a server can take, at 1, 2 and 4 workers in turn
   (``--scale-seconds`` each); sustained stored reads/s, batch p50/p99 and CPU per worker count;
2. sustained: ``--rate`` reads/s for ``--seconds`` at the largest worker count, with the purge,
   ``--investigators`` and the stream: reads/s stored, ingest batch p50/p99 (as the devices
   timed their POSTs), query p50/p99, edge-to-console alert latency, purge durations (audit
   entries), CPU of the server processes and of PostgreSQL per 1,000 reads/s;
3. faults (``--faults``), each during load, each followed by a drain and the exact count check:
   SIGKILL of one worker; PostgreSQL restarted (immediate: like a crash); the leader SIGKILLed
   while a purge deletes; a few devices in another host (a network namespace joined by a veth
   pair, tests/hosts.py ``peer``) cut off for ``--cut-seconds`` and restored (their spools
   drain), needs root.

After every phase: reads per camera sent = stored, none stored twice, one alert per hotlisted
read, each alert at each webhook endpoint, and `privplate audit verify` passes. Only counts and
timings are printed.

    .venv/bin/python benchmarks/load.py --quick              # about 3 minutes
    .venv/bin/python benchmarks/load.py --faults             # the full run (5 minutes at 1,100/s)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import hosts
from tests.fleet import Fleet, FleetShape
from tests.loadbed import (
    AlertWatch,
    Investigators,
    LoadBed,
    LoadConfig,
    RemoteFleet,
    percentile,
    postgres_cpu_seconds,
)

EXACT = (
    "reads_lost",
    "reads_extra",
    "reads_doubled",
    "cameras_off",
    "hits_without_alert",
    "alerts_doubled",
    "webhook_missing",
    "webhook_doubled",
)


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f} ms" if values else "n/a"


class Meter:
    """Stored reads/s and CPU over an interval."""

    def __init__(self, bed: LoadBed) -> None:
        self.bed = bed
        if bed.server is None:
            raise RuntimeError("no server running")
        self.server = bed.server
        self.t0 = time.monotonic()
        self.stored0 = bed.stored_reads()
        self.cpu0 = self.server.cpu_seconds()
        self.pg0 = postgres_cpu_seconds(bed.cluster)
        self.self0 = sum(os.times()[:2])

    def read(self) -> dict[str, float]:
        seconds = time.monotonic() - self.t0
        stored = self.bed.stored_reads() - self.stored0
        return {
            "seconds": seconds,
            "reads_per_s": stored / seconds,
            "server_cpu": (self.server.cpu_seconds() - self.cpu0) / seconds,
            "postgres_cpu": (postgres_cpu_seconds(self.bed.cluster) - self.pg0) / seconds,
            "fleet_cpu": (sum(os.times()[:2]) - self.self0) / seconds,
        }


def check(
    bed: LoadBed, fleet: Fleet, label: str, remote: RemoteFleet | None = None
) -> dict[str, Any]:
    fleet.stop_producing()
    started = time.monotonic()
    drained = fleet.drain(300)
    if remote is not None:
        drained = remote.stop()["drained"] and drained
    figures = bed.verify(fleet, remote=remote).values
    bad = {k: figures[k] for k in EXACT if figures[k]}
    ok = drained and not bad and figures["audit_verifies"]
    audit = "verifies" if figures["audit_verifies"] else "FAILS"
    print(
        f"  [{label}] sent {figures['reads_sent']:,} stored {figures['reads_stored']:,}; "
        f"hits {figures['hit_reads']} alerts {figures['alerts']}; "
        f"drain {time.monotonic() - started:.1f} s; webhook repeats on the wire "
        f"{figures['webhook_raw_repeats']}; audit {audit}"
        f" -> {'exact' if ok else f'NOT EXACT {bad}'}"
    )
    return figures | {"exact": ok}


def run_fleet(bed: LoadBed, rate: float, seconds: float, devices: Sequence[Any]) -> Fleet:
    fleet = bed.start_fleet(rate, list(devices))
    time.sleep(seconds)
    return fleet


def phase_scaling(bed: LoadBed, args: argparse.Namespace) -> list[dict[str, float]]:
    print(f"== 1. scaling: offered {args.offer:,} reads/s, {args.scale_seconds} s per step")
    rows = []
    for workers in args.workers:
        bed.start_server(workers)
        fleet = bed.start_fleet(args.offer)
        time.sleep(5)  # ramp: spools fill, every device has its key
        meter = Meter(bed)
        time.sleep(args.scale_seconds)
        figures = meter.read()
        batches = list(fleet.batch_seconds)
        check(bed, fleet, f"{workers} workers")
        fleet.close()
        bed.fleet = None
        if bed.server is not None:
            bed.server.stop()
        row = figures | {
            "workers": workers,
            "batch_p50": percentile(batches, 50),
            "batch_p99": percentile(batches, 99),
        }
        rows.append(row)
        print(
            f"  {workers} workers: {figures['reads_per_s']:,.0f} reads/s stored; batch p50 "
            f"{ms(batches, 50)} p99 {ms(batches, 99)}; CPU server {figures['server_cpu']:.2f} "
            f"PostgreSQL {figures['postgres_cpu']:.2f} fleet {figures['fleet_cpu']:.2f} cores"
        )
    return rows


def purge_durations(bed: LoadBed, since: datetime) -> list[float]:
    """Seconds each purge since ``since`` ran (its audit entry: start to entry)."""
    from privplate.deployment import Deployment  # noqa: PLC0415

    out = []
    with Deployment.open(bed.home, actor="load-check") as dep:
        for stored in dep.audit.entries(action="retention.purged", since=since):
            if stored.entry is None or stored.action != "retention.purged":
                continue
            started = stored.entry.details.get("run_started_at")
            if isinstance(started, str):
                begun = datetime.fromisoformat(started)
                out.append((stored.created_at - begun).total_seconds())
    return out


def phase_sustained(bed: LoadBed, args: argparse.Namespace) -> dict[str, Any]:
    workers = max(args.workers)
    print(f"== 2. sustained: {args.rate:,} reads/s for {args.seconds} s on {workers} workers")
    server = bed.start_server(workers)
    since = datetime.now(UTC)
    watch = AlertWatch(server.url, bed.operator_key)
    watch.start()
    people = Investigators(server.url, bed.investigator_keys, bed.hot, args.query_every)
    people.start()
    fleet = bed.start_fleet(args.rate)
    time.sleep(5)
    meter = Meter(bed)
    samples = []
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        time.sleep(min(30, max(0.1, deadline - time.monotonic())))
        samples.append(meter.read()["reads_per_s"])
    figures = meter.read()
    people.stop()
    spooled = fleet.spooled_at()
    result = check(bed, fleet, "sustained")
    time.sleep(2)
    watch.stop()
    latencies = [
        when - spooled[uuid_of(read)]
        for read, when in watch.received.values()
        if uuid_of(read) in spooled
    ]
    batches = list(fleet.batch_seconds)
    purges = purge_durations(bed, since)
    per_k = figures["reads_per_s"] / 1000
    others = {k: v for k, v in people.statuses.items() if k != 200}
    print(
        f"  stored {figures['reads_per_s']:,.0f} reads/s over {figures['seconds']:.0f} s "
        f"(30-s samples min {min(samples):,.0f}); ingest batch p50 {ms(batches, 50)} p99 "
        f"{ms(batches, 99)} ({len(batches):,} batches)"
    )
    print(
        f"  queries: {people.statuses[200]} answered, p50 {ms(people.latencies, 50)} p99 "
        f"{ms(people.latencies, 99)}; other statuses {others}"
    )
    print(
        f"  alerts edge-spooled -> operator's stream: {len(latencies)} of "
        f"{result['hit_reads']}, p50 {ms(latencies, 50)} p95 {ms(latencies, 95)} (includes the "
        f"devices' {bed.config.shape.idle_poll:.1f} s upload rhythm)"
    )
    # This phase's alerts only (the stream replays earlier ones when it opens).
    pushed = [
        lag
        for alert, lag in watch.since_recorded.items()
        if uuid_of(watch.received[alert][0]) in spooled
    ]
    print(
        f"  alerts recorded (on any of {workers} workers) -> operator's stream: p50 "
        f"{ms(pushed, 50)} p95 {ms(pushed, 95)} (PostgreSQL NOTIFY, no polling; includes the "
        "rest of the batch's transaction)"
    )
    if purges:
        print(
            f"  purges under load: {len(purges)}, median {statistics.median(purges):.2f} s, "
            f"max {max(purges):.2f} s"
        )
    print(
        f"  CPU: server {figures['server_cpu']:.2f} + PostgreSQL {figures['postgres_cpu']:.2f} "
        f"cores = {(figures['server_cpu'] + figures['postgres_cpu']) / per_k:.2f} cores per "
        f"1,000 reads/s (fleet simulator {figures['fleet_cpu']:.2f} cores beside)"
    )
    fleet.close()
    bed.fleet = None
    server.stop()
    extra = {"purges": purges, "alert_latency": latencies, "alert_push_latency": pushed}
    return result | figures | extra


def uuid_of(text: str) -> Any:
    import uuid  # noqa: PLC0415

    return uuid.UUID(text)


def phase_faults(bed: LoadBed, args: argparse.Namespace) -> list[dict[str, Any]]:
    workers = max(args.workers)
    print(f"== 3. faults during {args.rate:,} reads/s on {workers} workers")
    out = []

    def kill_worker(server: Any) -> str:
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        return f"SIGKILL worker {victim}"

    def restart_postgres(_server: Any) -> str:
        started = time.monotonic()
        bed.cluster.restart("immediate")
        return f"PostgreSQL restarted (immediate) in {time.monotonic() - started:.1f} s"

    def kill_leader_mid_purge(server: Any) -> str:
        deadline = time.monotonic() + 3 * bed.config.purge_interval
        while time.monotonic() < deadline:
            if purge_running(bed):
                leader = server.leader_pid()
                if leader is not None:
                    os.kill(leader, signal.SIGKILL)
                    return f"SIGKILL leader {leader} during a purge"
            time.sleep(0.05)
        return "no purge seen running"

    for fault in (kill_worker, restart_postgres, kill_leader_mid_purge):
        server = bed.start_server(workers)
        fleet = bed.start_fleet(args.rate)
        time.sleep(args.fault_seconds / 2)
        what = fault(server)
        time.sleep(args.fault_seconds / 2)
        print(f"  {what}")
        result = check(bed, fleet, fault.__name__)
        out.append(result | {"fault": what})
        fleet.close()
        bed.fleet = None
        server.stop()
    out.append(cut_edge_link(bed, args))
    return out


def cut_edge_link(bed: LoadBed, args: argparse.Namespace) -> dict[str, Any]:
    """A few devices in another host (tests/hosts.py peer) lose their link for
    ``--cut-seconds`` while the main fleet keeps sending; afterwards their spools drain."""
    why = hosts.unavailable()
    if why is not None:
        print(f"  edge link cut not run: {why}")
        return {"fault": "edge link cut", "exact": True, "skipped": why}
    server = bed.start_server(max(args.workers))
    fleet = bed.start_fleet(args.rate)
    remote_rate = args.rate * len(bed.remote_devices) / max(1, len(bed.devices))
    with hosts.peer("edge") as peer:
        remote = bed.start_remote(peer, remote_rate)
        try:
            time.sleep(args.fault_seconds / 2)
            # Reads keep coming and each device lingers, so its spool is seldom empty: the
            # backlog is gone once the spools hold no more than before the cut.
            usual = 0
            for _ in range(10):
                usual = max(usual, remote.depth())
                time.sleep(0.2)
            peer.cut()
            time.sleep(args.cut_seconds)
            spooled = remote.depth()
            peer.restore()
            restored = time.monotonic()
            while remote.depth() > usual and time.monotonic() - restored < 120:
                time.sleep(0.2)
            drain = time.monotonic() - restored
            what = (
                f"{len(bed.remote_devices)} devices in another host cut off for "
                f"{args.cut_seconds} s ({spooled} reads spooled meanwhile, {usual} before); "
                f"their backlog was sent {drain:.1f} s after the link came back"
            )
            print(f"  {what}")
            time.sleep(args.fault_seconds / 2)
            result = check(bed, fleet, "cut_edge_link", remote)
        finally:
            remote.kill()
    fleet.close()
    bed.fleet = None
    server.stop()
    return result | {"fault": what, "spooled_during_cut": spooled, "drain_seconds": drain}


def purge_running(bed: LoadBed) -> bool:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(
        host="127.0.0.1", port=bed.cluster.port, user="postgres", dbname="postgres"
    ) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
            "(query ILIKE 'DELETE FROM reads%' OR query ILIKE 'LOCK TABLE%')"
        ).fetchone()
    return bool(row and row[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--cameras-per-device", type=int, default=10)
    # 10 % above the 1,000 reads/s a city run must sustain: what is stored trails what is
    # offered by the reads still in the spools when the meter starts and stops.
    parser.add_argument("--rate", type=float, default=1100, help="reads/s offered (phase 2, 3)")
    parser.add_argument("--offer", type=float, default=3000, help="reads/s offered (phase 1)")
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--scale-seconds", type=int, default=60)
    parser.add_argument("--fault-seconds", type=int, default=60)
    parser.add_argument(
        "--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4]
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=FleetShape.idle_poll,
        help="each device uploads what it spooled this often (fewer, larger batches)",
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=0.0,
        help="edge.uplink_linger_seconds of every device (fewer, fuller batches)",
    )
    parser.add_argument("--investigators", type=int, default=5)
    parser.add_argument("--query-every", type=float, default=3.0)
    parser.add_argument("--purge-interval", type=int, default=30)
    parser.add_argument(
        "--phases",
        type=lambda s: set(s.split(",")),
        default={"scaling", "sustained"},
        help="which of scaling,sustained to run (--faults adds the faults)",
    )
    parser.add_argument("--faults", action="store_true")
    parser.add_argument(
        "--cut-seconds", type=int, default=60, help="how long the edge link cut lasts (faults)"
    )
    parser.add_argument(
        "--remote-devices", type=int, default=4, help="devices in the host whose link is cut"
    )
    parser.add_argument("--quick", action="store_true", help="small and short (about 3 minutes)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.devices, args.seconds, args.scale_seconds, args.fault_seconds = 40, 40, 20, 20
        args.rate, args.offer = 300, 1500
    shape = FleetShape(
        devices=args.devices,
        cameras_per_device=args.cameras_per_device,
        idle_poll=args.batch_seconds,
        linger=args.linger,
    )
    config = LoadConfig(
        workers=max(args.workers),
        shape=shape,
        investigators=args.investigators,
        query_every=args.query_every,
        purge_interval=args.purge_interval,
        remote_devices=args.remote_devices if args.faults else 0,
    )
    print(
        f"privplate load: {args.devices} devices x {args.cameras_per_device} cameras, "
        f"{os.cpu_count()} CPUs; PostgreSQL private cluster; spools in memory (tmpfs)"
    )
    bed = LoadBed(config)
    results: dict[str, Any] = {}
    try:
        started = time.monotonic()
        bed.setup()
        print(f"setup {time.monotonic() - started:.1f} s in {bed.root}")
        if "scaling" in args.phases:
            results["scaling"] = phase_scaling(bed, args)
        if "sustained" in args.phases:
            results["sustained"] = phase_sustained(bed, args)
        if args.faults:
            results["faults"] = phase_faults(bed, args)
    finally:
        bed.close()
    if args.json:
        args.json.write_text(json.dumps(results, default=str, indent=2))
    exact = results.get("sustained", {}).get("exact", True) and all(
        f["exact"] for f in results.get("faults", [])
    )
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
