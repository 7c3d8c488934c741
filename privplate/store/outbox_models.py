"""The webhook outbox: one row per (alert, active webhook), written in the alert's own
transaction, so a delivery survives the process that raised the alert.

A row names the alert and the webhook only (no plate, no payload, no secret): the body is
built from the alert row when it is sent, and the row goes with its alert when retention
purges it (foreign key ON DELETE CASCADE, and explicitly in privplate.retention.records).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from privplate.store.models import Base


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "webhook_id"),
        # The delivery loop's claim (due pending rows) and the metrics' counts by status.
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # A webhook's recent deliveries (GET /webhooks/{id}/deliveries).
        Index("ix_webhook_deliveries_webhook_id_created_at", "webhook_id", "created_at"),
    )

    #: Also the X-Privplate-Delivery header: stable across retries and workers.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    alert_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("alerts.id", ondelete="CASCADE"),
    )
    webhook_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("webhooks.id"))
    status: Mapped[str] = mapped_column(String(16))
    #: Attempts started (counted at the claim, so one that died with its worker counts too).
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    #: The last worker to claim the row ("host:pid:random") and until when its lease runs;
    #: claimed_until is cleared when the attempt's result is recorded.
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(nullable=True)
    #: The last attempt's HTTP status, or the error's class name (never a body or message).
    last_result: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
