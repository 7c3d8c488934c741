"""Factories for cameras, reads and evidence in tests."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

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
from privplate.store.server_models import Query, User
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
    (the product's only search is ``QueryService.run``, which checks and records it first).
    The store still wants an answered query on the record for each lookup: this writes one
    directly, for a test account, with no audit entry."""
    end = end or datetime.now(UTC) + timedelta(seconds=1)
    canonical = canonical_plate(plate, fold=dep.fold)
    probes = [
        TokenProbe(key.epoch_id, plate_token(key.key, canonical), key.starts_at, key.ends_at)
        for key in dep.keyring.keys_between(start, end)
    ]
    return find_reads(dep.db, recorded_query(dep, start, end), probes)


def recorded_query(dep: Deployment, start: datetime, end: datetime) -> uuid.UUID:
    """An answered, not yet looked-up query record (tests of the store only)."""
    now = datetime.now(UTC)
    query_id = uuid.uuid4()
    with dep.db.write() as conn:
        user = conn.execute(select(User.id).where(User.name == _STORE_TESTER)).scalar()
        if user is None:
            user = uuid.uuid4()
            conn.execute(
                insert(User).values(
                    id=user,
                    name=_STORE_TESTER,
                    person=_STORE_TESTER,
                    role="investigator",
                    created_at=now,
                    created_by="tests",
                )
            )
        conn.execute(
            insert(Query).values(
                id=query_id,
                user_id=user,
                created_at=now,
                purpose="stolen-vehicle",
                case_number="TEST-1",
                justification="a test of the store's token lookup",
                window_start=start,
                window_end=end,
                outcome="answered",
            )
        )
    return query_id


_STORE_TESTER = "store-tests"
