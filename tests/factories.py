"""Factories for cameras, reads and evidence in tests."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from privplate.deployment import Deployment
from privplate.store import (
    EvidenceIn,
    IngestResult,
    ReadIn,
    ReadMatch,
    TokenIn,
    TokenProbe,
    find_reads,
    ingest_reads,
)
from privplate.tokens import canonical_plate, plate_token

__all__ = [
    "EvidenceIn",
    "ReadIn",
    "TokenIn",
    "camera",
    "evidence",
    "ingest",
    "lookup",
    "read",
]


def camera(dep: Deployment, camera_id: str = "gate-1") -> str:
    dep.add_camera(camera_id, name=f"test {camera_id}")
    return camera_id


def read(
    dep: Deployment,
    plate: str,
    *,
    camera_id: str = "gate-1",
    observed_at: datetime | None = None,
    alternates: Sequence[str] = (),
    confidence: float = 0.9,
    evidence_id: uuid.UUID | None = None,
) -> ReadIn:
    """A read as an edge would build it: tokens under the key of the observation's epoch."""
    observed_at = observed_at or datetime.now(UTC)
    key = dep.keyring.current_key(observed_at)
    fold = dep.fold
    tokens = [TokenIn(plate_token(key.key, canonical_plate(plate, fold=fold)))]
    tokens += [
        TokenIn(plate_token(key.key, canonical_plate(alt, fold=fold)), is_alternate=True)
        for alt in alternates
    ]
    return ReadIn(
        read_id=uuid.uuid4(),
        camera_id=camera_id,
        observed_at=observed_at,
        epoch_id=key.epoch_id,
        tokens=tokens,
        confidence=confidence,
        evidence_id=evidence_id,
    )


def evidence(camera_id: str, sealed: bytes, observed_at: datetime | None = None) -> EvidenceIn:
    return EvidenceIn(
        evidence_id=uuid.uuid4(),
        camera_id=camera_id,
        observed_at=observed_at or datetime.now(UTC),
        sealed=sealed,
    )


def ingest(
    dep: Deployment,
    reads: Sequence[ReadIn],
    evidence: Sequence[EvidenceIn] = (),
    *,
    hits: Collection[uuid.UUID] = (),
    now: datetime | None = None,
) -> IngestResult:
    """The store's ingest on its own, for tests of the store: no hotlist matching or alerts
    (the product's one ingest path is ``Services.ingest``)."""
    return ingest_reads(
        db=dep.db,
        reads=reads,
        evidence=evidence,
        windows=dep.windows,
        limits=dep.limits,
        hits=hits,
        now=now,
    )


def lookup(
    dep: Deployment, plate: str, start: datetime, end: datetime | None = None
) -> list[ReadMatch]:
    """Reads of ``plate`` without the query policy: only tests may look a plate up this way
    (the product's only search is ``QueryService.run``, which checks and records it first)."""
    end = end or datetime.now(UTC) + timedelta(seconds=1)
    canonical = canonical_plate(plate, fold=dep.fold)
    probes = [
        TokenProbe(key.epoch_id, plate_token(key.key, canonical), key.starts_at, key.ends_at)
        for key in dep.keyring.keys_between(start, end)
    ]
    return find_reads(dep.db, probes, start, end)
