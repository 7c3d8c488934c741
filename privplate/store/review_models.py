"""The table of spot checks: searches and hand-made hotlist entries drawn for a compliance
review, and the verdicts on them. No column holds a plate: a row points at its subject by id,
and the subject's own record (a query, a hotlist entry) holds what the reviewer reads."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from privplate.store.models import Base


class SpotCheck(Base):
    __tablename__ = "spot_checks"
    __table_args__ = (
        # One review per subject: a near-term search that the random draw also picked is one
        # item of the queue, not two.
        UniqueConstraint("subject_kind", "subject_id"),
        # The queue: open items oldest first, reviewed ones newest first.
        Index("ix_spot_checks_open", "reviewed_at", "drawn_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    #: A privplate.policy.review.SubjectKind: "search" or "hotlist-entry".
    subject_kind: Mapped[str] = mapped_column(String(16))
    #: The query's or the hotlist entry's id (no foreign key: retention deletes expired
    #: entries, and the review of one stays on the record).
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    #: The audit actor who made the search or the entry, kept so that the person rule holds
    #: after retention deleted the subject.
    requester: Mapped[str] = mapped_column(String(200))
    drawn_at: Mapped[datetime] = mapped_column(index=True)
    #: A privplate.policy.review.DrawReason: "random" or "near-term".
    reason: Mapped[str] = mapped_column(String(16))
    #: JSON list of the lexicon terms the screen came close to (near-term draws).
    terms: Mapped[str] = mapped_column(Text, default="[]")
    reviewer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: A privplate.policy.review.Verdict.
    verdict: Mapped[str | None] = mapped_column(String(24), nullable=True)
    note: Mapped[str] = mapped_column(String(2000), default="")
    #: JSON of what the reviewer reads about the subject, written by retention just before it
    #: deletes the subject of an open review (a removed entry, a query past the audit window):
    #: otherwise removing an entry right after adding it would leave its reviewer nothing.
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
