"""Plate lookup: the only way to find reads is to present a plate.

The plate is canonicalized and tokenized under every live epoch key of the window; only rows
with one of those exact tokens are returned. There is deliberately no function here (or
anywhere) that lists or counts reads by camera or time without a plate.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select

from privplate.store.database import Database
from privplate.store.models import Read
from privplate.tokens.canonical import canonical_plate
from privplate.tokens.keyring import Keyring
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
    wanted = {
        (key.epoch_id, plate_token(key.key, canonical)) for key in keyring.keys_between(start, end)
    }
    if not wanted:
        return []
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
    matches: dict[uuid.UUID, ReadMatch] = {}
    with db.read() as conn:
        for row in conn.execute(stmt):
            if (row.epoch_id, bytes(row.token)) not in wanted:
                continue  # a token only means something inside its own epoch
            prior = matches.get(row.read_id)
            via_alternate = row.is_alternate and (prior is None or prior.via_alternate)
            matches[row.read_id] = ReadMatch(
                read_id=row.read_id,
                camera_id=row.camera_id,
                observed_at=row.observed_at,
                confidence=row.confidence,
                evidence_id=row.evidence_id,
                via_alternate=via_alternate,
            )
    return sorted(matches.values(), key=lambda m: (m.observed_at, str(m.read_id)))
