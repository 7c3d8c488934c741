"""Tables of the two-person unseal: evidence keys, officers' share commitments, requests and
the officers' partial decryptions. No table holds a share or the evidence secret."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from privplate.store.models import Base


class EvidenceKey(Base):
    """One evidence public key X, from a key ceremony; retired when rotated."""

    __tablename__ = "evidence_keys"

    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    activated_at: Mapped[datetime]
    retired_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ShareSet(Base):
    """One dealing of X's secret to officers (a ceremony, or a re-sharing of the same X)."""

    __tablename__ = "share_sets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    threshold: Mapped[int] = mapped_column(Integer)
    officers: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    superseded_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ShareCommitment(Base):
    """X_i = x_i*B of one officer's share: what partial decryptions are checked against."""

    __tablename__ = "share_commitments"
    __table_args__ = (PrimaryKeyConstraint("share_set_id", "share_index"),)

    share_set_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    share_index: Mapped[int] = mapped_column(Integer)
    officer: Mapped[str] = mapped_column(String(100))
    commitment: Mapped[bytes] = mapped_column(LargeBinary(32))


_OPEN = text("status = 'pending'")


class UnsealRequest(Base):
    __tablename__ = "unseal_requests"
    __table_args__ = (
        Index("ix_unseal_requests_status", "status", "created_at"),
        # At most one open request per evidence item: partials of two requests never coexist.
        Index(
            "uq_unseal_requests_open",
            "evidence_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    evidence_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    evidence_observed_at: Mapped[datetime]
    share_set_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    requested_by: Mapped[str] = mapped_column(String(100))
    case_number: Mapped[str] = mapped_column(String(64))
    justification: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime]
    #: pending, released, denied, expired (or evidence-expired when retention purged the item),
    #: withdrawn (by its requester)
    status: Mapped[str] = mapped_column(String(24))
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(String(2000), default="")
    #: The released item's key, SecretBox-encrypted under the server's unseal key, until
    #: ``release_expires_at``; retention erases it after that.
    release_box: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    release_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)


class UnsealApproval(Base):
    """One officer's approval of one request: the partial decryption D_i = x_i*R and its
    proof, sealed to the request and share under the server's unseal-partial subkey
    (privplate.unseal.partials); never stored in the clear."""

    __tablename__ = "unseal_approvals"
    __table_args__ = (
        PrimaryKeyConstraint("request_id", "share_index"),
        UniqueConstraint("request_id", "officer"),
    )

    request_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    share_index: Mapped[int] = mapped_column(Integer)
    officer: Mapped[str] = mapped_column(String(100))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
