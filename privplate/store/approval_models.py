"""The table of searches that wait for a second person (privplate.policy.approvals).

A pending search keeps its plate only as AEAD ciphertext bound to its own id, under a subkey of
the server secret that is never in the database (SPEC §10.6); the ciphertext is deleted when the
search runs, is denied or expires. The row itself (who asked, why, who decided, when) stays for
the record as long as query records do, without it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from privplate.store.models import Base


class ApprovalStatus(StrEnum):
    """Where a search filed for approval stands. PENDING and APPROVED are open (they hold the
    encrypted plate); the others are final and hold none."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    RUN = "run"


OPEN_STATUSES = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)


class SearchApproval(Base):
    __tablename__ = "search_approvals"
    __table_args__ = (
        # Expiry finds open requests past their deadline; lists show the newest first.
        Index("ix_search_approvals_status_expires", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    #: The requesting account (its name and id): only it may run the approved search.
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    requested_by: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(64))
    case_number: Mapped[str] = mapped_column(String(64))
    justification: Mapped[str] = mapped_column(String(2000))
    agreement_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(index=True)
    #: Pending: when it expires undecided; approved: when the approval to run it lapses.
    expires_at: Mapped[datetime]
    #: An ApprovalStatus.
    status: Mapped[str] = mapped_column(String(16))
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str] = mapped_column(String(2000), default="")
    #: nonce || XChaCha20-Poly1305 of the padded canonical plate, bound to ``id``; NULL once the
    #: request ran, was denied or expired.
    sealed_plate: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: The recorded query the approved search became, once run.
    query_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    ran_at: Mapped[datetime | None] = mapped_column(nullable=True)
