"""Webhooks that receive every alert, signed with HMAC-SHA256 (administrators)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from privplate.alerts.outbox import DeliveryInfo
from privplate.alerts.webhooks import WebhookInfo
from privplate.api.deps import ServicesDep, allow
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.store.outbox_models import DeliveryStatus

router = APIRouter(tags=["webhooks"])
Admin = Annotated[UserInfo, Depends(allow(Role.ADMIN))]


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=2000, examples=["https://dispatch.example/hook"])


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    created_by: str
    created_at: datetime
    active: bool

    @classmethod
    def of(cls, w: WebhookInfo) -> WebhookOut:
        return cls(
            id=w.id, url=w.url, created_by=w.created_by, created_at=w.created_at, active=w.active
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="HMAC key (hex), shown once: verify X-Privplate-Signature.")


@router.get("/webhooks", summary="List webhooks", response_model=list[WebhookOut])
def webhooks(_: Admin, services: ServicesDep) -> list[WebhookOut]:
    return [WebhookOut.of(w) for w in services.webhooks.all()]


@router.post("/webhooks", summary="Add a webhook", status_code=201, response_model=WebhookCreated)
def add_webhook(body: WebhookIn, admin: Admin, services: ServicesDep) -> WebhookCreated:
    info, secret = services.webhooks.create(actor=admin.actor, url=body.url)
    return WebhookCreated(**WebhookOut.of(info).model_dump(), secret=secret)


@router.post(
    "/webhooks/{webhook_id}/deactivate", summary="Stop sending to a webhook", status_code=204
)
def deactivate(webhook_id: uuid.UUID, admin: Admin, services: ServicesDep) -> Response:
    services.webhooks.deactivate(actor=admin.actor, webhook_id=webhook_id)
    return Response(status_code=204)


class DeliveryOut(BaseModel):
    """One alert's delivery to the webhook (the body and the webhook's secret are not kept)."""

    id: uuid.UUID = Field(description="The X-Privplate-Delivery header of every attempt.")
    alert_id: int
    status: DeliveryStatus
    attempts: int
    last_result: str | None = Field(description="HTTP status or error class of the last try.")
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: DeliveryInfo) -> DeliveryOut:
        return cls(
            id=d.id,
            alert_id=d.alert_id,
            status=d.status,
            attempts=d.attempts,
            last_result=d.last_result,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
        )


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="Recent deliveries to a webhook",
    response_model=list[DeliveryOut],
)
def deliveries(
    webhook_id: uuid.UUID,
    _: Admin,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    return [DeliveryOut.of(d) for d in services.webhooks.deliveries(webhook_id, limit=limit)]
