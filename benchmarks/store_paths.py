"""The store's ingest and token lookup on their own, as the benchmarks time them.

The product reaches these only through ``Services.ingest`` (hotlist matching and alerts around
the same store ingest) and ``QueryService.run`` (policy, quota and the query's record before
the same token lookup, which the store then marks as used); the benchmarks time the store
steps alone so that figures compare across versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from privplate.deployment import Deployment
from privplate.store import EvidenceIn, IngestResult, ReadIn, ReadMatch, TokenProbe
from privplate.store.ingest import ingest_reads
from privplate.store.lookup import _find
from privplate.tokens import canonical_plate, plate_token


def ingest(
    dep: Deployment,
    reads: Sequence[ReadIn],
    evidence: Sequence[EvidenceIn] = (),
    *,
    now: datetime | None = None,
) -> IngestResult:
    return ingest_reads(
        db=dep.db, reads=reads, evidence=evidence, windows=dep.windows, limits=dep.limits, now=now
    )


def lookup(dep: Deployment, plate: str, start: datetime, end: datetime) -> list[ReadMatch]:
    """The token lookup alone (what ``find_reads`` runs between checking the recorded query
    and marking it looked up), so the figure compares with versions that had no such record."""
    canonical = canonical_plate(plate, fold=dep.fold)
    probes = [
        TokenProbe(key.epoch_id, plate_token(key.key, canonical), key.starts_at, key.ends_at)
        for key in dep.keyring.keys_between(start, end)
    ]
    return _find(dep.db, probes, start, end)
