"""The ingest batch as it travels from an edge to the server (JSON), and its conversion to
the store's types. Tokens are hex, sealed evidence is base64; there is no field for text."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from privplate.errors import IngestRejected
from privplate.store.ingest import EvidenceIn, ReadIn, TokenIn
from privplate.timestamps import Timestamp
from privplate.tokens.plate_token import TOKEN_BYTES

EXAMPLE_TOKEN = "3f1c9a0b6d2e4f5a8b7c6d5e4f3a2b1c"  # noqa: S105 - a made-up token


def _hex_token(value: str) -> str:
    if len(value) != TOKEN_BYTES * 2 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"a token is {TOKEN_BYTES * 2} lower-case hex digits")
    return value


HexToken = Annotated[str, AfterValidator(_hex_token)]


class WireToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: HexToken = Field(examples=[EXAMPLE_TOKEN])
    alternate: bool = False


class WireRead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    read_id: uuid.UUID
    camera_id: str = Field(min_length=1, max_length=64, examples=["gate-north"])
    observed_at: Timestamp
    epoch_id: int = Field(ge=0)
    tokens: list[WireToken] = Field(min_length=1, max_length=64)
    confidence: float = Field(ge=0.0, le=1.0)
    evidence_id: uuid.UUID | None = None


class WireEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evidence_id: uuid.UUID
    camera_id: str = Field(min_length=1, max_length=64)
    observed_at: Timestamp
    #: base64 of the sealed blob (privplate sealing format, PPS2; PPS1 still accepted).
    sealed: str = Field(min_length=4, max_length=3_000_000)


class IngestBatch(BaseModel):
    """One batch from one device. Re-send the same bytes with the same ``batch_id`` to retry."""

    model_config = ConfigDict(extra="forbid")

    batch_id: uuid.UUID
    reads: list[WireRead] = Field(default_factory=list, max_length=100_000)
    evidence: list[WireEvidence] = Field(default_factory=list, max_length=100_000)

    def to_store(self) -> tuple[list[ReadIn], list[EvidenceIn]]:
        reads = [
            ReadIn(
                read_id=r.read_id,
                camera_id=r.camera_id,
                observed_at=r.observed_at,
                epoch_id=r.epoch_id,
                tokens=[TokenIn(bytes.fromhex(t.token), t.alternate) for t in r.tokens],
                confidence=r.confidence,
                evidence_id=r.evidence_id,
            )
            for r in self.reads
        ]
        evidence = []
        for i, e in enumerate(self.evidence):
            try:
                sealed = base64.b64decode(e.sealed, validate=True)
            except (binascii.Error, ValueError):
                raise IngestRejected("sealed evidence must be base64", index=i) from None
            evidence.append(EvidenceIn(e.evidence_id, e.camera_id, e.observed_at, sealed))
        return reads, evidence

    @classmethod
    def from_store(
        cls, batch_id: uuid.UUID, reads: list[ReadIn], evidence: list[EvidenceIn]
    ) -> IngestBatch:
        return cls(
            batch_id=batch_id,
            reads=[
                WireRead(
                    read_id=r.read_id,
                    camera_id=r.camera_id,
                    observed_at=r.observed_at,
                    epoch_id=r.epoch_id,
                    tokens=[
                        WireToken(token=t.token.hex(), alternate=t.is_alternate) for t in r.tokens
                    ],
                    confidence=r.confidence,
                    evidence_id=r.evidence_id,
                )
                for r in reads
            ],
            evidence=[
                WireEvidence(
                    evidence_id=e.evidence_id,
                    camera_id=e.camera_id,
                    observed_at=e.observed_at,
                    sealed=base64.b64encode(e.sealed).decode("ascii"),
                )
                for e in evidence
            ],
        )
