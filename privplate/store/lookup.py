"""Finding reads by token: the store's half of a plate search.

The store never sees a plate. The query policy (privplate.policy.queries) checks a search,
records it, turns its plate into one token per live epoch of the window and hands those here
with the id of the recorded query. The store looks up only for a query on the record that was
answered (not denied or refused) and not yet used, inside that query's own window, and marks
it used in the same transaction as the caller's audit entry: a lookup that bypasses the policy
would have to forge a query record, which is itself counted, audited and reviewed. There is
deliberately no function here (or anywhere) that lists or counts reads by camera or time
without tokens of a presented plate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, select, update

from privplate.errors import StoreError
from privplate.store.database import Database
from privplate.store.models import Read, table_of
from privplate.store.server_models import Query, QueryOutcome

_READS = table_of(Read)


@dataclass(frozen=True)
class ReadMatch:
    read_id: uuid.UUID
    camera_id: str
    observed_at: datetime
    confidence: float
    evidence_id: uuid.UUID | None
    #: True when only an alternate reading (not the best OCR reading) matched.
    via_alternate: bool


@dataclass(frozen=True)
class TokenProbe:
    """One plate's token under one epoch key, and the span that key covers."""

    epoch_id: int
    token: bytes
    starts_at: datetime
    ends_at: datetime

    def __repr__(self) -> str:  # a token is as identifying as the plate inside its epoch
        return f"TokenProbe(epoch_id={self.epoch_id})"


def find_reads(
    db: Database,
    query_id: uuid.UUID,
    probes: Sequence[TokenProbe],
    *,
    then: Callable[[Connection, list[ReadMatch]], None] | None = None,
) -> list[ReadMatch]:
    """Reads carrying one of ``probes`` (inside its own epoch) observed in the window of the
    recorded query ``query_id``, oldest first; ``then`` runs in the transaction that marks the
    query as looked up (its audit entry). Anything but an answered, unused query is refused."""
    with db.read() as conn:
        window = conn.execute(
            select(Query.window_start, Query.window_end).where(
                Query.id == query_id,
                Query.outcome == QueryOutcome.ANSWERED,
                Query.looked_up_at.is_(None),
            )
        ).first()
    if window is None:
        raise StoreError(
            "a lookup needs a query on the record that was answered and not yet looked up"
        )
    start, end = window
    matches = _find(db, probes, start, end)
    with db.write() as conn:
        used = conn.execute(
            update(Query)
            .where(Query.id == query_id, Query.looked_up_at.is_(None))
            .values(looked_up_at=datetime.now(UTC), match_count=len(matches))
        ).rowcount
        if used != 1:
            raise StoreError("this query was looked up already")
        if then is not None:
            then(conn, matches)
    return matches


def _find(
    db: Database, probes: Sequence[TokenProbe], start: datetime, end: datetime
) -> list[ReadMatch]:
    wanted = {(p.epoch_id, p.token) for p in probes}
    if not wanted:
        return []
    if db.is_postgres:
        return _collect(_postgres_rows(db, probes, start, end), wanted)
    # Core columns, not the mapped attributes: an ORM-enabled select costs more to build and
    # to run than this hot, one-statement search can afford (benchmarks/core.py lookup p50).
    reads = _READS.c
    stmt = select(
        reads.read_id,
        reads.token,
        reads.epoch_id,
        reads.is_alternate,
        reads.camera_id,
        reads.observed_at,
        reads.confidence,
        reads.evidence_id,
    ).where(
        # Two IN lists rather than a row-value IN: SQLite only uses ix_reads_epoch_token for
        # this form. The cross product (a token of epoch A under epoch B) is filtered below.
        reads.epoch_id.in_(sorted({e for e, _ in wanted})),
        reads.token.in_(sorted({t for _, t in wanted})),
        reads.observed_at >= start,
        reads.observed_at < end,
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
    db: Database, probes: Sequence[TokenProbe], start: datetime, end: datetime
) -> list[Any]:
    """One arm per epoch, each bounded to its epoch's span so it touches one partition with
    one index probe; the SQL text depends only on the number of epochs."""
    params: list[object] = []
    for probe in probes:
        params += [
            probe.epoch_id,
            probe.token,
            max(start, probe.starts_at),
            min(end, probe.ends_at),
        ]
    with db.read() as conn:
        driver: Any = conn.connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute(_pg_union(len(probes)), params)
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
