"""Core throughput and latency benchmarks.

Measures, on this machine:

1. tokens per second (``canonical_plate`` + ``plate_token``);
2. seals per second of a 50 KB random "image" (``seal``);
3. reads per second through the store's ingest (the step ``Services.ingest`` runs) on SQLite and
   PostgreSQL, after the store already holds ``--preload`` reads, next to the anchor: raw
   SQLAlchemy Core executemany of the same rows (fresh read ids) into the same ``reads`` table;
4. token lookup latency p50/p99 (the step ``QueryService.run`` runs) over a 30-epoch window with
   ``--lookup-reads`` reads stored (SQLite always; PostgreSQL with ``--postgres``).

Every deployment lives in a temporary directory (and, on PostgreSQL, in a fresh schema that is
dropped at the end). Only counts and timings are printed, never plate text.

    .venv/bin/python benchmarks/core.py --quick      # smoke run, well under a minute
    .venv/bin/python benchmarks/core.py              # full run (about 10-15 minutes)
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import platform
import pstats
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlean
import store_paths
from sqlalchemy import Engine, Table, create_engine, event, insert, text
from sqlalchemy.engine import make_url

from privplate.deployment import Deployment, init_deployment
from privplate.sealing import generate_keypair, seal
from privplate.store import ReadIn, TokenIn
from privplate.store.database import make_engine
from privplate.store.models import Read
from privplate.store.partitions import day_of
from privplate.tokens import canonical_plate, plate_token
from privplate.tokens.keyring import EpochKey

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EPOCH_SECONDS = 86_400
WINDOW_EPOCHS = 30
CAMERAS = 16
ALTERNATE_FRACTION = 0.2
LOOKUP_GOAL_MS = 20.0
PRELOAD_CACHE_KIB = 1024 * 1024
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_reads: Table = Read.__table__  # type: ignore[assignment]
# Columns of ``reads`` that a plain (non-hotlist) read sets to a constant, where the schema has
# them; the raw rows below must carry everything the ingest path writes.
_CONSTANT_COLUMNS = {name: False for name in ("is_hit",) if name in _reads.c}


@dataclass(frozen=True)
class Sizes:
    token_plates: int
    seals: int
    seal_bytes: int
    preload: int
    batch: int
    batches: int
    lookup_reads: int
    postgres_lookup_reads: int
    lookups: int
    present_plates: int
    preload_chunk: int = 100_000


FULL = Sizes(
    token_plates=200_000,
    seals=2_000,
    seal_bytes=50 * 1024,
    preload=1_000_000,
    batch=1_000,
    batches=100,
    lookup_reads=5_000_000,
    postgres_lookup_reads=2_000_000,
    lookups=2_000,
    present_plates=1_000,
)
QUICK = Sizes(
    token_plates=20_000,
    seals=200,
    seal_bytes=50 * 1024,
    preload=50_000,
    batch=1_000,
    batches=10,
    lookup_reads=200_000,
    postgres_lookup_reads=200_000,
    lookups=400,
    present_plates=200,
)


# -- helpers -------------------------------------------------------------------------------


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "inf"


def random_plate(rng: random.Random) -> str:
    """A plausible plate as an OCR engine or a person might type it (sometimes separated)."""
    body = "".join(rng.choices(ALNUM, k=rng.randint(5, 8)))
    roll = rng.random()
    if roll < 0.2:
        cut = rng.randint(1, len(body) - 1)
        body = f"{body[:cut]} {body[cut:]}"
    elif roll < 0.3:
        cut = rng.randint(1, len(body) - 1)
        body = f"{body[:cut]}-{body[cut:]}".lower()
    return body


def alternate_of(rng: random.Random, canonical: str) -> str:
    """The same plate with one character misread (as an OCR alternate would be)."""
    i = rng.randrange(len(canonical))
    other = rng.choice(ALNUM.replace(canonical[i], ""))
    return canonical[:i] + other + canonical[i + 1 :]


def random_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@contextmanager
def timer() -> Iterator[list[float]]:
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


# -- 1 and 2: pure crypto ------------------------------------------------------------------


def bench_tokens(sizes: Sizes, rng: random.Random) -> None:
    plates = [random_plate(rng) for _ in range(sizes.token_plates)]
    key = secrets.token_bytes(32)
    for plate in plates[:1000]:  # warm-up
        plate_token(key, canonical_plate(plate))
    with timer() as t:
        for plate in plates:
            plate_token(key, canonical_plate(plate))
    print(
        f"tokens: {len(plates):,} random plates (canonical_plate + plate_token) in "
        f"{t[0]:.2f} s -> {rate(len(plates), t[0])} tokens/s "
        f"({t[0] / len(plates) * 1e6:.2f} us each)"
    )


def bench_seals(sizes: Sizes) -> None:
    _secret, public = generate_keypair()
    image = os.urandom(sizes.seal_bytes)
    ids = [uuid.uuid4() for _ in range(sizes.seals)]
    for evidence_id in ids[:20]:  # warm-up
        seal(image, public, evidence_id=evidence_id)
    with timer() as t:
        for evidence_id in ids:
            seal(image, public, evidence_id=evidence_id)
    mb = sizes.seals * sizes.seal_bytes / 1e6
    print(
        f"seals: {sizes.seals:,} x {sizes.seal_bytes // 1024} KB random image in {t[0]:.2f} s "
        f"-> {rate(sizes.seals, t[0])} seals/s ({mb / t[0]:,.0f} MB/s, "
        f"{t[0] / sizes.seals * 1e3:.3f} ms each)"
    )


# -- a populated store ---------------------------------------------------------------------


@dataclass
class Store:
    """A deployment with 30 past daily epochs, cameras and bookkeeping of what it holds."""

    label: str
    dep: Deployment
    now: datetime  # the ``now`` every ingest and lookup of this run is made at
    keys: list[EpochKey]
    cameras: list[str]
    expiry: timedelta
    reads: int = 0
    rows: int = 0
    #: canonical plate -> number of reads stored for it (the lookup's "present" plates)
    present: dict[str, int] = field(default_factory=dict)

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.keys[0].starts_at, self.keys[-1].ends_at


def open_store(label: str, home: Path, database_url: str, now: datetime) -> Store:
    init_deployment(home, database_url=database_url, epoch_seconds=EPOCH_SECONDS)
    dep = Deployment.open(home)
    try:
        cameras = [f"bench-cam-{i:02d}" for i in range(CAMERAS)]
        for camera in cameras:
            dep.add_camera(camera)
        # One daily epoch per past day of the window, created the way a running edge would
        # have created it on that day.
        for days_back in range(WINDOW_EPOCHS, 0, -1):
            dep.keyring.current_key(now=now - timedelta(days=days_back, hours=-12))
        start = now - timedelta(days=WINDOW_EPOCHS)
        keys = dep.keyring.keys_between(start, now)
        if len(keys) != WINDOW_EPOCHS:
            raise SystemExit(f"{label}: expected {WINDOW_EPOCHS} epochs, found {len(keys)}")
        # PostgreSQL: daily partitions for the window (no-op on SQLite); the ingest path
        # shares this per-process cache, so neither measurement pays for DDL.
        dep.db.ensure_partitions({day_of(k.starts_at) for k in keys})
        expiry = dep.windows.non_hit_reads
        if expiry < timedelta(days=WINDOW_EPOCHS):
            # observed_at + window must lie after ``now`` or ingest discards the read.
            raise SystemExit(
                f"{label}: the non-hit retention window is shorter than the "
                f"{WINDOW_EPOCHS}-day benchmark window; use the default preset"
            )
        return Store(label=label, dep=dep, now=now, keys=keys, cameras=cameras, expiry=expiry)
    except BaseException:
        dep.close()
        raise


def observed_in(rng: random.Random, key: EpochKey, now: datetime, expiry: timedelta) -> datetime:
    """A moment inside ``key``'s epoch that is still inside the retention window at ``now``."""
    lo = max(key.starts_at, now - expiry) + timedelta(minutes=1)
    hi = key.ends_at - timedelta(minutes=1)
    return lo + timedelta(seconds=rng.uniform(0, (hi - lo).total_seconds()))


def read_rows(store: Store, reads: Sequence[ReadIn]) -> list[dict[str, Any]]:
    """The ``reads`` rows of ``reads``, as the ingest path writes them."""
    rows = []
    for read in reads:
        expires_at = read.observed_at + store.expiry
        rows.extend(
            {
                "read_id": read.read_id,
                "token": tok.token,
                "observed_at": read.observed_at,
                "epoch_id": read.epoch_id,
                "is_alternate": tok.is_alternate,
                "camera_id": read.camera_id,
                "expires_at": expires_at,
                "confidence": float(read.confidence),
                "evidence_id": read.evidence_id,
                **_CONSTANT_COLUMNS,
            }
            for tok in read.tokens
        )
    return rows


def edge_batch(
    store: Store, rng: random.Random, count: int, during: tuple[datetime, datetime] | None
) -> list[ReadIn]:
    """A batch of ``count`` reads as an edge sends it, ~20% with one alternate token.

    With ``during`` every read falls in that slice of the newest epoch, in time order (an edge
    uploading what it just saw); without it the reads are spread over all the window's epochs
    (late uploads). Tokens are HMACs of random plates under the read's epoch key.
    """
    newest = store.keys[-1]
    if during is not None:
        lo, hi = during
        seconds = (hi - lo).total_seconds()
        moments = sorted(lo + timedelta(seconds=rng.uniform(0, seconds)) for _ in range(count))
    out = []
    for i in range(count):
        if during is None:
            key = rng.choice(store.keys)
            observed = observed_in(rng, key, store.now, store.expiry)
        else:
            key, observed = newest, moments[i]
        canonical = canonical_plate(random_plate(rng))
        tokens = [TokenIn(plate_token(key.key, canonical))]
        if rng.random() < ALTERNATE_FRACTION:
            tokens.append(TokenIn(plate_token(key.key, alternate_of(rng, canonical)), True))
        out.append(
            ReadIn(
                read_id=random_uuid(rng),
                camera_id=rng.choice(store.cameras),
                observed_at=observed,
                epoch_id=key.epoch_id,
                tokens=tokens,
                confidence=round(rng.uniform(0.5, 1.0), 3),
            )
        )
    return out


def edge_batches(
    store: Store, rng: random.Random, sizes: Sizes, count: int, *, spread: bool
) -> list[list[ReadIn]]:
    """``count`` consecutive batches (see :func:`edge_batch`)."""
    if spread:
        return [edge_batch(store, rng, sizes.batch, None) for _ in range(count)]
    newest = store.keys[-1]
    lo = newest.starts_at + timedelta(minutes=1)
    step = (newest.ends_at - timedelta(minutes=1) - lo) / count
    return [
        edge_batch(store, rng, sizes.batch, (lo + i * step, lo + (i + 1) * step))
        for i in range(count)
    ]


def present_reads(store: Store, rng: random.Random, plates: int) -> list[ReadIn]:
    """Reads of ``plates`` known plates (1-60 reads each over the window), real tokens."""
    out = []
    while len(store.present) < plates:
        canonical = canonical_plate(random_plate(rng))
        if canonical in store.present:
            continue
        count = rng.randint(1, 60)
        store.present[canonical] = count
        for _ in range(count):
            key = rng.choice(store.keys)
            out.append(
                ReadIn(
                    read_id=random_uuid(rng),
                    camera_id=rng.choice(store.cameras),
                    observed_at=observed_in(rng, key, store.now, store.expiry),
                    epoch_id=key.epoch_id,
                    tokens=[TokenIn(plate_token(key.key, canonical))],
                    confidence=round(rng.uniform(0.5, 1.0), 3),
                )
            )
    return out


def filler_rows(store: Store, rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Rows of ``count`` reads with random tokens spread over the window, built directly as
    dicts because preloading millions of reads is otherwise dominated by Python."""
    spans = []
    for key in store.keys:
        lo = max(key.starts_at, store.now - store.expiry) + timedelta(minutes=1)
        spans.append((key, lo, int((key.ends_at - timedelta(minutes=1) - lo).total_seconds())))
    rows = []
    randbytes, getrandbits, choice, random_ = rng.randbytes, rng.getrandbits, rng.choice, rng.random
    cameras, expiry = store.cameras, store.expiry
    for _ in range(count):
        key, lo, span = choice(spans)
        observed = lo + timedelta(
            seconds=getrandbits(32) % span, microseconds=getrandbits(20) % 1_000_000
        )
        row = {
            "read_id": uuid.UUID(int=getrandbits(128), version=4),
            "token": randbytes(16),
            "observed_at": observed,
            "epoch_id": key.epoch_id,
            "is_alternate": False,
            "camera_id": choice(cameras),
            "expires_at": observed + expiry,
            "confidence": 0.5 + random_() / 2,
            "evidence_id": None,
            **_CONSTANT_COLUMNS,
        }
        rows.append(row)
        if random_() < ALTERNATE_FRACTION:
            rows.append(row | {"token": randbytes(16), "is_alternate": True})
    return rows


def raw_insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """The anchor: one transaction, one Core executemany into ``reads``."""
    with engine.begin() as conn:
        conn.execute(insert(_reads), rows)


@contextmanager
def preload_engine(store: Store) -> Iterator[Engine]:
    """An engine for bulk preloading only. On SQLite its connections get a 1 GiB page cache,
    which makes random inserts into the indexes of a multi-GB file several times faster; the
    deployment's own connections (the ones measured) keep the default settings."""
    engine = make_engine(store.dep.db.url)
    if store.dep.db.is_sqlite:

        def big_cache(dbapi_conn: sqlean.Connection, _record: object) -> None:
            dbapi_conn.execute(f"PRAGMA cache_size=-{PRELOAD_CACHE_KIB}")

        event.listen(engine, "connect", big_cache)
    try:
        yield engine
    finally:
        engine.dispose()


def preload(
    store: Store, rng: random.Random, target_reads: int, chunk: int, *, present_plates: int = 0
) -> None:
    """Fill the store up to ``target_reads`` reads with raw Core executemany."""
    before = store.reads
    with timer() as t, preload_engine(store) as engine:
        if present_plates and not store.present:
            reads = present_reads(store, rng, present_plates)
            for start in range(0, len(reads), chunk):
                part = reads[start : start + chunk]
                rows = read_rows(store, part)
                raw_insert(engine, rows)
                store.reads += len(part)
                store.rows += len(rows)
        while store.reads < target_reads:
            count = min(chunk, target_reads - store.reads)
            rows = filler_rows(store, rng, count)
            raw_insert(engine, rows)
            store.reads += count
            store.rows += len(rows)
        if store.dep.db.is_postgres:
            # The steady state autovacuum keeps a live database in (statistics, visibility
            # map), instead of timing against a backlog of autovacuum work on 2 cores.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM (ANALYZE) reads"))
    if store.reads > before:
        print(
            f"[{store.label}] preload: +{store.reads - before:,} reads in {t[0]:.1f} s "
            f"({rate(store.reads - before, t[0])} reads/s, raw Core executemany"
            f"{', then VACUUM ANALYZE' if store.dep.db.is_postgres else ''}); store holds "
            f"{store.reads:,} reads ({store.rows:,} rows) over {WINDOW_EPOCHS} daily epochs"
        )


# -- 3: ingest -----------------------------------------------------------------------------


def bench_ingest(
    store: Store, rng: random.Random, sizes: Sizes, *, spread: bool, profile: bool
) -> None:
    warmup, profile_batches = 2, 20
    total = sizes.batches + warmup
    made = edge_batches(store, rng, sizes, total + profile_batches, spread=spread)
    full, extra = made[:total], made[total:]
    # The anchor writes the very same rows under fresh read ids.
    raw = [
        read_rows(store, [dataclasses.replace(r, read_id=random_uuid(rng)) for r in batch])
        for batch in full
    ]
    held = store.reads
    t_full = t_raw = 0.0
    for i in range(total):  # interleaved, so both see the same store size and cache state
        start = time.perf_counter()
        result = store_paths.ingest(store.dep, full[i], now=store.now)
        mid = time.perf_counter()
        raw_insert(store.dep.db.engine, raw[i])
        end = time.perf_counter()
        if result.inserted != len(full[i]):
            raise SystemExit(
                f"[{store.label}] ingest stored {result.inserted} of {len(full[i])} reads "
                f"({result.duplicates} duplicates, {result.expired} expired): fix the benchmark"
            )
        if i >= warmup:
            t_full += mid - start
            t_raw += end - mid
        store.reads += 2 * len(full[i])
        store.rows += 2 * len(raw[i])
    n = sizes.batches * sizes.batch
    rows = sum(len(b) for b in raw[warmup:])
    full_rate, raw_rate = n / t_full, n / t_raw
    print(
        f"[{store.label}] ingest, store holding {held:,} reads, {sizes.batches} batches x "
        f"{sizes.batch:,} reads ({rows:,} rows, {ALTERNATE_FRACTION:.0%} with an alternate; "
        f"{'each batch spread over all epochs' if spread else 'time-ordered, newest epoch'}):"
    )
    print(
        f"[{store.label}]   full path (Deployment.ingest): {full_rate:,.0f} reads/s "
        f"({t_full / sizes.batches * 1e3:.1f} ms/batch)"
    )
    print(
        f"[{store.label}]   raw Core executemany (prebuilt rows): {raw_rate:,.0f} reads/s "
        f"({t_raw / sizes.batches * 1e3:.1f} ms/batch)"
    )
    print(
        f"[{store.label}]   ratio full/raw = {full_rate / raw_rate:.2f} "
        f"({'OK' if full_rate >= raw_rate / 2 else 'SLOWER than half the anchor'})"
    )
    if profile:
        profiled(
            f"{store.label} ingest x{len(extra)} batches",
            lambda: [store_paths.ingest(store.dep, b, now=store.now) for b in extra],
        )
        store.reads += sum(len(b) for b in extra)
        store.rows += sum(len(read_rows(store, b)) for b in extra)


# -- 4: lookup -----------------------------------------------------------------------------


def bench_lookup(store: Store, rng: random.Random, sizes: Sizes, profile: bool) -> None:
    present = rng.sample(sorted(store.present), min(len(store.present), sizes.lookups // 2))
    absent: list[str] = []
    while len(absent) < sizes.lookups - len(present):
        canonical = canonical_plate(random_plate(rng))
        if canonical not in store.present:
            absent.append(canonical)
    plan = [(p, store.present[p]) for p in present] + [(p, 0) for p in absent]
    rng.shuffle(plan)
    start, end = store.window
    for plate, _ in plan[:20]:  # warm-up
        store_paths.lookup(store.dep, plate, start, end)
    hit_ms: list[float] = []
    miss_ms: list[float] = []
    wrong = matched = 0
    for plate, expected in plan:
        t0 = time.perf_counter()
        found = store_paths.lookup(store.dep, plate, start, end)
        elapsed = (time.perf_counter() - t0) * 1e3
        (hit_ms if expected else miss_ms).append(elapsed)
        matched += len(found)
        wrong += len(found) != expected
    every = sorted(hit_ms + miss_ms)
    hit_ms.sort()
    miss_ms.sort()
    p99 = percentile(every, 99)
    print(
        f"[{store.label}] lookup, {store.reads:,} reads ({store.rows:,} rows) stored, "
        f"{WINDOW_EPOCHS}-epoch window, {len(plan):,} lookups ({len(hit_ms):,} present, "
        f"{len(miss_ms):,} absent; {matched / max(1, len(hit_ms)):.1f} reads per present plate)"
    )
    print(
        f"[{store.label}]   all: p50 {percentile(every, 50):.2f} ms, p99 {p99:.2f} ms, "
        f"max {every[-1]:.2f} ms, mean {statistics.fmean(every):.2f} ms "
        f"({'meets' if p99 <= LOOKUP_GOAL_MS else 'MISSES'} the p99 <= "
        f"{LOOKUP_GOAL_MS:.0f} ms goal)"
    )
    print(
        f"[{store.label}]   present: p50 {percentile(hit_ms, 50):.2f} ms, "
        f"p99 {percentile(hit_ms, 99):.2f} ms; absent: p50 {percentile(miss_ms, 50):.2f} ms, "
        f"p99 {percentile(miss_ms, 99):.2f} ms"
    )
    if wrong:
        print(f"[{store.label}]   WARNING: {wrong} lookups returned an unexpected number of reads")
    if profile:
        sample = plan[:200]
        profiled(
            f"{store.label} lookup x{len(sample)}",
            lambda: [store_paths.lookup(store.dep, p, start, end) for p, _ in sample],
        )


def profiled(title: str, work: Callable[[], object]) -> None:
    prof = cProfile.Profile()
    prof.enable()
    work()
    prof.disable()
    print(f"--- cProfile: {title} (top 25 by cumulative time) ---")
    stats = pstats.Stats(prof, stream=sys.stdout)
    stats.strip_dirs().sort_stats("cumulative").print_stats(25)


# -- backends ------------------------------------------------------------------------------


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh schema on ``base_url``; yields a URL whose search_path is that schema."""
    schema = f"bench_core_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(base_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base_url)
        query = dict(url.query)
        query["options"] = f"-csearch_path={schema}"
        yield url.set(query=query).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def run_backend(
    label: str,
    database_url: str,
    home: Path,
    sizes: Sizes,
    now: datetime,
    *,
    seed: int,
    lookup_reads: int | None,
    spread: bool,
    profile: bool,
) -> None:
    rng = random.Random(f"{seed}-{label}")
    store = open_store(label, home, database_url, now)
    try:
        preload(store, rng, sizes.preload, sizes.preload_chunk, present_plates=sizes.present_plates)
        bench_ingest(store, rng, sizes, spread=spread, profile=profile)
        if lookup_reads is not None:
            preload(store, rng, lookup_reads, sizes.preload_chunk)
            bench_lookup(store, rng, sizes, profile)
    finally:
        store.dep.close()


def postgres_version(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    except Exception as exc:  # any failure means: skip PostgreSQL
        print(f"[postgres] skipped: cannot connect ({str(exc).splitlines()[0]})")
        return None
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run (under a minute)"
    )
    parser.add_argument("--preload", type=int, help="reads in the store before ingest is timed")
    parser.add_argument("--batches", type=int, help="timed ingest batches per backend")
    parser.add_argument("--batch-size", type=int, help="reads per ingest batch")
    parser.add_argument(
        "--lookup-reads", type=int, help="reads stored when lookups are timed (SQLite)"
    )
    parser.add_argument(
        "--postgres-lookup-reads",
        type=int,
        help="reads stored when lookups are timed on PostgreSQL",
    )
    parser.add_argument("--lookups", type=int, help="timed lookups (half present, half absent)")
    parser.add_argument("--token-plates", type=int, help="plates tokenized")
    parser.add_argument("--seals", type=int, help="images sealed")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL server for the ingest (and --postgres lookup) runs",
    )
    parser.add_argument("--postgres", action="store_true", help="also time lookups on PostgreSQL")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL entirely")
    parser.add_argument(
        "--only",
        choices=["crypto", "sqlite", "postgres"],
        action="append",
        help="run only these parts (repeatable)",
    )
    parser.add_argument(
        "--spread",
        action="store_true",
        help="spread each ingest batch over all 30 epochs (late uploads) "
        "instead of a time-ordered slice of the newest epoch",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after timing, cProfile extra ingest batches and lookups",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    # On SIGTERM, unwind normally so the temporary directory and PostgreSQL schema go away.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))

    base = QUICK if args.quick else FULL
    sizes = dataclasses.replace(
        base,
        **{
            name: value
            for name, value in {
                "preload": args.preload,
                "batches": args.batches,
                "batch": args.batch_size,
                "lookup_reads": args.lookup_reads,
                "postgres_lookup_reads": args.postgres_lookup_reads,
                "lookups": args.lookups,
                "token_plates": args.token_plates,
                "seals": args.seals,
            }.items()
            if value is not None
        },
    )
    parts = set(args.only or ["crypto", "sqlite", "postgres"])
    if args.no_postgres:
        parts.discard("postgres")
    rng = random.Random(args.seed)
    # Every ingest and lookup happens "at" midnight UTC today; the 30 epochs are the 30 days
    # before it, so retention (30 days by default) keeps every read.
    today = datetime.now(UTC)
    now = datetime(today.year, today.month, today.day, tzinfo=UTC)

    print(
        f"privplate core benchmarks ({'quick' if args.quick else 'full'}): python "
        f"{platform.python_version()}, sqlite {sqlean.sqlite_version}, {os.cpu_count()} CPUs"
    )
    began = time.perf_counter()
    if "crypto" in parts:
        bench_tokens(sizes, rng)
        bench_seals(sizes)
    with tempfile.TemporaryDirectory(prefix="privplate-bench-") as tmp:
        if "sqlite" in parts:
            run_backend(
                "sqlite",
                "sqlite:///privplate.db",
                Path(tmp) / "sqlite",
                sizes,
                now,
                seed=args.seed,
                lookup_reads=sizes.lookup_reads,
                spread=args.spread,
                profile=args.profile,
            )
        if "postgres" in parts and (version := postgres_version(args.postgres_url)):
            print(f"[postgres] server {version}")
            with postgres_schema(args.postgres_url) as url:
                run_backend(
                    "postgres",
                    url,
                    Path(tmp) / "postgres",
                    sizes,
                    now,
                    seed=args.seed,
                    lookup_reads=sizes.postgres_lookup_reads if args.postgres else None,
                    spread=args.spread,
                    profile=args.profile,
                )
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
