"""Batch ingest of token-only reads and their sealed evidence.

A batch is all-or-nothing: every read is validated before anything is written, and the insert
runs in one transaction. Re-sending a batch adds nothing (read ids are chosen by the edge).
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from privplate.errors import IngestRejected, StoreError, UnknownCamera
from privplate.sealing.ecies import is_sealed
from privplate.store.bulk import (
    COLUMNS,
    ReadRow,
    copy_reads_postgres,
    insert_reads_sqlite,
    stored_read_ids,
)
from privplate.store.cameras import active_camera_ids
from privplate.store.database import Database
from privplate.store.models import Base, Epoch, Evidence, Read, ReadCount, table_of
from privplate.store.partitions import day_of
from privplate.tokens.plate_token import TOKEN_BYTES

# The ingest path uses Core tables, not the mapped attributes: an ORM-enabled statement costs
# more to build and run, on every batch of every edge.
_EPOCHS = table_of(Epoch)
_COUNTS = table_of(ReadCount)
_CHUNK = 900  # stays under every backend's bound-parameter limit
MAX_SEALED_BYTES = 2_000_000


@dataclass(frozen=True)
class TokenIn:
    token: bytes
    is_alternate: bool = False


@dataclass(frozen=True)
class ReadIn:
    """One observation as an edge reports it: tokens only, never text."""

    read_id: uuid.UUID
    camera_id: str
    observed_at: datetime
    epoch_id: int
    tokens: Sequence[TokenIn]
    confidence: float
    evidence_id: uuid.UUID | None = None


@dataclass(frozen=True)
class EvidenceIn:
    evidence_id: uuid.UUID
    camera_id: str
    observed_at: datetime
    sealed: bytes


@dataclass(frozen=True)
class IngestResult:
    """How a batch landed. ``expired`` reads were past retention on arrival and not kept."""

    inserted: int
    duplicates: int
    expired: int
    inserted_ids: tuple[uuid.UUID, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class RetentionWindows:
    non_hit_reads: timedelta
    hit_reads: timedelta
    evidence: timedelta


@dataclass(frozen=True)
class IngestLimits:
    max_batch_reads: int = 5_000
    max_future_skew: timedelta = timedelta(minutes=5)
    max_tokens_per_read: int = 8


AfterIngest = Callable[[Connection, IngestResult], None]


def _check_shape(
    reads: Sequence[ReadIn], evidence: Sequence[EvidenceIn], limits: IngestLimits, now: datetime
) -> None:
    if not reads and not evidence:
        raise IngestRejected("the batch is empty")
    if len(reads) > limits.max_batch_reads:
        raise IngestRejected(
            f"{len(reads)} reads in one batch; the limit is {limits.max_batch_reads} "
            "(ingest.max_batch_reads): split the batch"
        )
    latest = now + limits.max_future_skew
    seen: set[uuid.UUID] = set()
    for i, read in enumerate(reads):
        if not isinstance(read.read_id, uuid.UUID):
            raise IngestRejected("read_id must be a UUID", index=i)
        if read.read_id in seen:
            raise IngestRejected("the same read_id appears twice in the batch", index=i)
        seen.add(read.read_id)
        _check_time(read.observed_at, latest, i)
        if not (
            isinstance(read.confidence, float | int)
            and math.isfinite(read.confidence)
            and 0.0 <= read.confidence <= 1.0
        ):
            raise IngestRejected("confidence must be a number between 0 and 1", index=i)
        _check_tokens(read.tokens, limits.max_tokens_per_read, i)
    for i, item in enumerate(evidence):
        _check_time(item.observed_at, latest, i)
        if not is_sealed(item.sealed):
            raise IngestRejected("evidence must be sealed with the privplate format", index=i)
        if len(item.sealed) > MAX_SEALED_BYTES:
            raise IngestRejected(
                f"sealed evidence is {len(item.sealed)} bytes; the limit is {MAX_SEALED_BYTES}",
                index=i,
            )


def _check_time(observed_at: datetime, latest: datetime, index: int) -> None:
    if not isinstance(observed_at, datetime) or observed_at.tzinfo is None:
        raise IngestRejected("observed_at must be a timezone-aware timestamp", index=index)
    if observed_at > latest:
        raise IngestRejected(
            "observed_at is too far in the future (check the device clock; "
            "ingest.max_future_skew_seconds bounds the allowed skew)",
            index=index,
        )


def _check_tokens(tokens: Sequence[TokenIn], max_tokens: int, index: int) -> None:
    if not tokens or len(tokens) > max_tokens:
        raise IngestRejected(f"a read needs 1 to {max_tokens} tokens", index=index)
    best = 0
    values = set()
    for tok in tokens:
        if not isinstance(tok.token, bytes) or len(tok.token) != TOKEN_BYTES:
            raise IngestRejected(f"malformed token: tokens are {TOKEN_BYTES} bytes", index=index)
        values.add(tok.token)
        best += not tok.is_alternate
    if best != 1:
        raise IngestRejected("a read needs exactly one best (non-alternate) token", index=index)
    if len(values) != len(tokens):
        raise IngestRejected("a read lists the same token twice", index=index)


def _chunks(items: Sequence[uuid.UUID]) -> Iterable[list[uuid.UUID]]:
    for start in range(0, len(items), _CHUNK):
        yield list(items[start : start + _CHUNK])


def _existing(
    conn: Connection,
    model: type[Base],
    column: str,
    ids: Sequence[uuid.UUID],
    times: Sequence[datetime] = (),
) -> set[uuid.UUID]:
    """Which ``ids`` are already stored. Given the items' observation times, the search is
    limited to that span, so PostgreSQL only probes the partitions that could hold them."""
    table = table_of(model)
    col = table.c[column]
    found: set[uuid.UUID] = set()
    for chunk in _chunks(ids):
        stmt = select(col).where(col.in_(chunk))
        if times:
            stmt = stmt.where(table.c.observed_at >= min(times), table.c.observed_at <= max(times))
        found.update(r[0] for r in conn.execute(stmt))
    return found


def _insert(db: Database, model: type[Base]) -> object:
    dialect_insert = postgresql.insert if db.is_postgres else sqlite.insert
    return dialect_insert(table_of(model)).on_conflict_do_nothing()


def ingest_reads(
    *,
    db: Database,
    reads: Sequence[ReadIn],
    evidence: Sequence[EvidenceIn] = (),
    windows: RetentionWindows,
    limits: IngestLimits | None = None,
    hits: Collection[uuid.UUID] = (),
    now: datetime | None = None,
    then: AfterIngest | None = None,
) -> IngestResult:
    """Store a batch. Reads in ``hits`` matched a hotlist and keep the hit-read window.

    ``then`` runs inside the batch's transaction once the rows are in (alerts, the device's
    batch record): if it raises, nothing of the batch is stored.
    """
    limits = limits or IngestLimits()
    now = now or datetime.now(UTC)
    _check_shape(reads, evidence, limits, now)
    days: set[date] = set()
    if db.is_postgres:
        days = {day_of(r.observed_at) for r in reads} | {day_of(e.observed_at) for e in evidence}
    for attempt in range(2):
        db.ensure_partitions(days)
        try:
            with db.write() as conn:
                return _ingest(conn, db, reads, evidence, windows, hits, now, then)
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            if db.is_postgres and attempt == 0:
                # Another process may have dropped a partition we believed existed.
                db.forget_partitions()
                continue
            raise StoreError(
                f"batch not stored ({type(exc.orig).__name__ if exc.orig else 'database error'});"
                " nothing was written, retry the batch"
            ) from None
    raise AssertionError("unreachable")


def _check_cameras(
    conn: Connection, reads: Sequence[ReadIn], evidence: Sequence[EvidenceIn]
) -> None:
    known = active_camera_ids(conn, {r.camera_id for r in reads} | {e.camera_id for e in evidence})
    named = [r.camera_id for r in reads], [e.camera_id for e in evidence]
    for camera_ids in named:
        for i, camera_id in enumerate(camera_ids):
            if camera_id not in known:
                raise UnknownCamera(
                    f"camera {camera_id!r} is not registered (privplate cameras add)", index=i
                )


def _check_epochs(conn: Connection, reads: Sequence[ReadIn]) -> dict[int, Any]:
    epochs = {
        row.id: row
        for row in conn.execute(
            select(
                _EPOCHS.c.id, _EPOCHS.c.starts_at, _EPOCHS.c.ends_at, _EPOCHS.c.destroyed_at
            ).where(_EPOCHS.c.id.in_(sorted({r.epoch_id for r in reads})))
        )
    }
    for i, read in enumerate(reads):
        epoch = epochs.get(read.epoch_id)
        if epoch is None:
            raise IngestRejected("epoch_id is unknown to this deployment", index=i)
        if not epoch.starts_at <= read.observed_at < epoch.ends_at:
            raise IngestRejected("observed_at lies outside the read's epoch", index=i)
    return epochs


def _check_evidence_refs(
    conn: Connection, reads: Sequence[ReadIn], batch_evidence: set[uuid.UUID]
) -> None:
    missing = {r.evidence_id for r in reads if r.evidence_id is not None} - batch_evidence
    if not missing:
        return
    never_sent = missing - _existing(conn, Evidence, "id", sorted(missing))
    for i, read in enumerate(reads):
        if read.evidence_id in never_sent:
            raise IngestRejected("evidence_id names evidence that was never sent", index=i)


def _read_rows(read: ReadIn, expires_at: datetime, *, is_hit: bool = False) -> list[ReadRow]:
    return [
        (
            read.read_id,
            tok.token,
            read.observed_at,
            read.epoch_id,
            tok.is_alternate,
            is_hit,
            read.camera_id,
            expires_at,
            float(read.confidence),
            read.evidence_id,
        )
        for tok in read.tokens
    ]


def _insert_reads(conn: Connection, db: Database, rows: list[ReadRow]) -> None:
    if db.is_sqlite:
        insert_reads_sqlite(conn, rows)
        return
    savepoint = conn.begin_nested()
    try:
        copy_reads_postgres(conn, rows)
        savepoint.commit()
    except db.engine.dialect.loaded_dbapi.Error:
        # A concurrent sender stored some of these rows first: COPY cannot skip conflicts,
        # so retry the batch as INSERT ... ON CONFLICT DO NOTHING.
        savepoint.rollback()
        conn.execute(_insert(db, Read), [dict(zip(COLUMNS, r, strict=True)) for r in rows])  # type: ignore[call-overload]


def _count_reads(conn: Connection, db: Database, counts: Counter[tuple[date, str, bool]]) -> None:
    """Add this batch's reads to the per camera and day totals (transparency reports)."""
    totals: dict[tuple[date, str], list[int]] = {}
    for (day, camera, is_hit), n in counts.items():
        total = totals.setdefault((day, camera), [0, 0])
        total[0] += n
        total[1] += n if is_hit else 0
    dialect_insert = postgresql.insert if db.is_postgres else sqlite.insert
    stmt = dialect_insert(_COUNTS)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_COUNTS.c.day, _COUNTS.c.camera_id],
        set_={
            "reads": _COUNTS.c.reads + stmt.excluded.reads,
            "hits": _COUNTS.c.hits + stmt.excluded.hits,
        },
    )
    conn.execute(
        stmt,
        [
            {"day": day, "camera_id": camera, "reads": n, "hits": h}
            for (day, camera), (n, h) in sorted(totals.items())
        ],
    )


def _ingest(
    conn: Connection,
    db: Database,
    reads: Sequence[ReadIn],
    evidence: Sequence[EvidenceIn],
    windows: RetentionWindows,
    hits: Collection[uuid.UUID],
    now: datetime,
    then: AfterIngest | None,
) -> IngestResult:
    _check_cameras(conn, reads, evidence)
    epochs = _check_epochs(conn, reads)
    batch_evidence = {e.evidence_id for e in evidence}
    _check_evidence_refs(conn, reads, batch_evidence)
    existing_reads = stored_read_ids(conn, db, reads)
    existing_evidence = _existing(
        conn, Evidence, "id", [e.evidence_id for e in evidence], [e.observed_at for e in evidence]
    )

    rows: list[ReadRow] = []
    kept_evidence: set[uuid.UUID] = set()
    inserted: list[uuid.UUID] = []
    counts: Counter[tuple[date, str, bool]] = Counter()
    expired = 0
    for read in reads:
        if read.read_id in existing_reads:
            continue
        is_hit = read.read_id in hits
        window = windows.hit_reads if is_hit else windows.non_hit_reads
        expires_at = read.observed_at + window
        if expires_at <= now or epochs[read.epoch_id].destroyed_at is not None:
            expired += 1
            continue
        inserted.append(read.read_id)
        counts[(day_of(read.observed_at), read.camera_id, is_hit)] += 1
        if read.evidence_id is not None:
            kept_evidence.add(read.evidence_id)
        rows.extend(_read_rows(read, expires_at, is_hit=is_hit))
    referenced = {r.evidence_id for r in reads if r.evidence_id is not None}
    evidence_rows = [
        {
            "id": e.evidence_id,
            "observed_at": e.observed_at,
            "camera_id": e.camera_id,
            "expires_at": e.observed_at + windows.evidence,
            "sealed": e.sealed,
        }
        for e in evidence
        if e.evidence_id not in existing_evidence
        # Evidence of a read discarded on arrival goes with it.
        and (e.evidence_id in kept_evidence or e.evidence_id not in referenced)
        and e.observed_at + windows.evidence > now
    ]
    if evidence_rows:
        conn.execute(_insert(db, Evidence), evidence_rows)  # type: ignore[call-overload]
    if rows:
        _insert_reads(conn, db, rows)
        _count_reads(conn, db, counts)
    result = IngestResult(
        inserted=len(inserted),
        duplicates=len(reads) - len(inserted) - expired,
        expired=expired,
        inserted_ids=tuple(inserted),
    )
    if then is not None:
        then(conn, result)
    return result
