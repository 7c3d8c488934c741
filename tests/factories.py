"""Factories for cameras, reads and evidence in tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from privplate.deployment import Deployment
from privplate.store import EvidenceIn, ReadIn, TokenIn

__all__ = ["EvidenceIn", "ReadIn", "TokenIn", "camera", "evidence", "read"]
from privplate.tokens import canonical_plate, plate_token


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
