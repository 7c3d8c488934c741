"""What the spot-check draw costs a search.

Runs the policy-checked search (``QueryService.run``, in process, as the API calls it) on a
fresh deployment holding ``--reads`` reads, alternating the draw share between 0 (nothing is
drawn; the draw still runs and writes its audit entry) and 1 (every search is drawn: one review
row more), so both sets of timings come from the same run and the same store. Prints p50/p99
per share and their ratio, then the draw step alone (``draw_search`` in a transaction) per
call. On SQLite always, on PostgreSQL with ``--postgres``.

    .venv/bin/python benchmarks/spot_checks.py --quick
    .venv/bin/python benchmarks/spot_checks.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

Only counts and timings are printed, never plate text.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core import percentile, postgres_schema, random_plate

from privplate.deployment import Deployment, init_deployment
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.queries import QueryRequest
from privplate.policy.review import draw_search
from privplate.services import Services
from privplate.store import ReadIn, TokenIn
from privplate.tokens import canonical_plate, plate_token

CAMERA = "bench-gate"
# The benchmark asks far more than a day's default quotas.
QUOTAS = {
    "PRIVPLATE_QUERIES__PER_USER_PER_DAY": "10000",
    "PRIVPLATE_QUERIES__PER_DEPLOYMENT_PER_DAY": "1000000",
}


def _reads(dep: Deployment, plates: list[str], now: datetime) -> list[ReadIn]:
    key = dep.keyring.current_key(now)
    return [
        ReadIn(
            read_id=uuid.uuid4(),
            camera_id=CAMERA,
            observed_at=now - timedelta(seconds=i),
            epoch_id=key.epoch_id,
            tokens=[TokenIn(plate_token(key.key, canonical_plate(plate, fold=dep.fold)))],
            confidence=0.9,
        )
        for i, plate in enumerate(plates)
    ]


def run(label: str, database_url: str, home: Path, reads: int, searches: int) -> None:
    init_deployment(home, database_url=database_url)
    rng = random.Random(17)
    now = datetime.now(UTC)
    with Deployment.open(home, actor="bench") as dep, Services(dep) as services:
        dep.add_camera(CAMERA)
        plates = [random_plate(rng) for _ in range(reads)]
        for i in range(0, reads, 5_000):
            services.ingest(_reads(dep, plates[i : i + 5_000], now), actor="bench")
        user = accounts.create_user(
            db=dep.db,
            audit=dep.audit,
            actor="bench",
            name="bench-investigator",
            role=Role.INVESTIGATOR,
            password=None,
        )
        settings = services.queries.settings
        times: dict[float, list[float]] = {0.0: [], 1.0: []}
        for i in range(searches):
            share = 1.0 if i % 2 else 0.0
            settings.spot_check_share = share
            req = QueryRequest(
                plates[rng.randrange(reads)],
                now - timedelta(days=1),
                now + timedelta(minutes=1),
                Purpose.STOLEN_VEHICLE,
                f"BENCH-{i}",
                "Vehicle reported stolen from the Elm Street lot last night.",
            )
            started = time.perf_counter()
            services.queries.run(user, req)
            times[share].append((time.perf_counter() - started) * 1000)
        p = {s: (percentile(sorted(t), 50), percentile(sorted(t), 99)) for s, t in times.items()}
        print(f"{label}: {searches} searches over {reads} reads, share 0 and 1 alternating")
        for share, (p50, p99) in p.items():
            print(f"  share {share:.0f}: p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
        print(
            f"  ratio share 1 / share 0: p50 {p[1.0][0] / p[0.0][0]:.3f}   "
            f"p99 {p[1.0][1] / p[0.0][1]:.3f}"
        )
        # The draw step alone, in one transaction per call as the search runs it.
        step: dict[float, list[float]] = {0.0: [], 1.0: []}
        for i in range(2 * searches):
            share = 1.0 if i % 2 else 0.0
            started = time.perf_counter()
            with dep.db.write() as conn:
                draw_search(
                    conn,
                    dep.audit,
                    query_id=uuid.uuid4(),
                    requester=user.actor,
                    share=share,
                    terms=(),
                    now=now,
                )
            step[share].append((time.perf_counter() - started) * 1000)
        for share, t in step.items():
            t.sort()
            print(
                f"  draw step alone (own transaction), share {share:.0f}: "
                f"p50 {percentile(t, 50):6.3f} ms   p99 {percentile(t, 99):6.3f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reads and searches")
    parser.add_argument("--reads", type=int, default=100_000)
    parser.add_argument("--searches", type=int, default=2_000)
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL")
    args = parser.parse_args()
    reads, searches = (5_000, 400) if args.quick else (args.reads, args.searches)
    os.environ.update(QUOTAS)
    with tempfile.TemporaryDirectory(prefix="bench-spot-") as tmp:
        db = Path(tmp) / "sqlite" / "privplate.db"
        run("SQLite", f"sqlite:///{db}", Path(tmp) / "sqlite", reads, searches)
        if args.postgres:
            with postgres_schema(args.postgres) as url:
                run("PostgreSQL", url, Path(tmp) / "postgres", reads, searches)


if __name__ == "__main__":
    main()
