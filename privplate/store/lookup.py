"""Plate lookup: the only way to find reads is to present a plate.

The plate is canonicalized and tokenized under every live epoch key of the window; only rows
with one of those exact tokens are returned. There is deliberately no function here (or
anywhere) that lists or counts reads by camera or time without a plate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, select

from privplate.store.database import Database
from privplate.store.models import Read
from privplate.tokens.canonical import canonical_plate
from privplate.tokens.keyring import EpochKey, Keyring
from privplate.tokens.plate_token import plate_token

_reads: Table = Read.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class ReadMatch:
    read_id: uuid.UUID
    camera_id: str
    observed_at: datetime
    confidence: float
    evidence_id: uuid.UUID | None
    #: True when only an alternate reading (not the best OCR reading) matched.
    via_alternate: bool


def lookup_plate(
    *,
    db: Database,
    keyring: Keyring,
    plate: str,
    start: datetime,
    end: datetime,
    fold: Mapping[str, str] | None = None,
) -> list[ReadMatch]:
    """Reads of ``plate`` observed in [start, end), oldest first."""
    canonical = canonical_plate(plate, fold=fold)
    keys = keyring.keys_between(start, end)
    wanted = {(key.epoch_id, plate_token(key.key, canonical)) for key in keys}
    if not wanted:
        return []
    if db.is_postgres:
        return _collect(_postgres_rows(db, keys, canonical, start, end), wanted)
    stmt = select(
        _reads.c.read_id,
        _reads.c.token,
        _reads.c.epoch_id,
        _reads.c.is_alternate,
        _reads.c.camera_id,
        _reads.c.observed_at,
        _reads.c.confidence,
        _reads.c.evidence_id,
    ).where(
        # Two IN lists rather than a row-value IN: SQLite only uses ix_reads_epoch_token for
        # this form. The cross product (a token of epoch A under epoch B) is filtered below.
        _reads.c.epoch_id.in_(sorted({e for e, _ in wanted})),
        _reads.c.token.in_(sorted({t for _, t in wanted})),
        _reads.c.observed_at >= start,
        _reads.c.observed_at < end,
    )
    with db.read() as conn:
        return _collect(conn.execute(stmt), wanted)


_PG_ARM = (
    "SELECT read_id, token, epoch_id, is_alternate, camera_id, observed_at, confidence, "
    "evidence_id FROM reads WHERE epoch_id = %s AND token = %s AND observed_at >= %s "
    "AND observed_at < %s"
)


@cache
def _pg_union(arms: int) -> str:
    return " UNION ALL ".join([_PG_ARM] * arms)


def _postgres_rows(
    db: Database, keys: list[EpochKey], canonical: str, start: datetime, end: datetime
) -> list[Any]:
    """One arm per epoch, each bounded to its epoch's span so it touches one partition with
    one index probe; the SQL text depends only on the number of epochs."""
    params: list[object] = []
    for key in keys:
        params += [
            key.epoch_id,
            plate_token(key.key, canonical),
            max(start, key.starts_at),
            min(end, key.ends_at),
        ]
    with db.read() as conn:
        driver: Any = conn.connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute(_pg_union(len(keys)), params)
            return list(cursor.fetchall())


def _collect(rows: Iterable[Any], wanted: set[tuple[int, bytes]]) -> list[ReadMatch]:
    matches: dict[uuid.UUID, ReadMatch] = {}
    for row in rows:
        read_id, token, epoch_id, is_alternate, camera_id, observed_at, confidence, evidence = (
            tuple(row)
        )
        if (epoch_id, bytes(token)) not in wanted:
            continue  # a token only means something inside its own epoch
        prior = matches.get(read_id)
        matches[read_id] = ReadMatch(
            read_id=read_id,
            camera_id=camera_id,
            observed_at=observed_at.astimezone(UTC),
            confidence=confidence,
            evidence_id=evidence,
            via_alternate=bool(is_alternate) and (prior is None or prior.via_alternate),
        )
    return sorted(matches.values(), key=lambda m: (m.observed_at, str(m.read_id)))
