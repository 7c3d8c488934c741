"""Alerts: recent ones, and a Server-Sent Events stream for consoles."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from privplate.alerts import AlertInfo, alerts_after, latest_alert_id
from privplate.alerts.outcomes import AlertOutcome, record_outcome
from privplate.alerts.stream import alert_events
from privplate.api.deps import ServicesDep, allow
from privplate.identity.accounts import UserInfo, user_for_bearer
from privplate.identity.roles import Role
from privplate.store.server_models import AlertKind

router = APIRouter(tags=["alerts"])
Watcher = Annotated[UserInfo, Depends(allow(Role.OPERATOR, Role.INVESTIGATOR, Role.COMPLIANCE))]
_bearer = HTTPBearer(auto_error=False)


class AlertOut(BaseModel):
    id: int
    kind: AlertKind = Field(
        default=AlertKind.HOTLIST_HIT,
        description="hotlist_hit, or a device alert: silent_camera, spool_backlog",
    )
    read_id: uuid.UUID | None = Field(description="a hotlist hit's read (null: device alert)")
    observed_at: datetime
    camera_id: str
    hotlist: str
    entry_id: uuid.UUID | None = Field(description="a hotlist hit's entry (null: device alert)")
    reason: str
    case_number: str
    via_alternate: bool
    confidence: float
    evidence_id: uuid.UUID | None
    created_at: datetime
    outcome: AlertOutcome | None = Field(
        default=None, description="what came of it, once reported (POST /alerts/{id}/outcome)"
    )
    device_id: str | None = Field(default=None, description="a device alert's device")
    cause: str | None = Field(
        default=None,
        description="why a device alert was raised: no_frame, no_read, no_report, "
        "spool_depth, spool_age",
    )
    clears: int | None = Field(
        default=None, description="on the row that ends a device alert: the alert it clears"
    )
    cleared_at: datetime | None = Field(
        default=None, description="when a device alert's condition ended (null: still on)"
    )

    @classmethod
    def of(cls, a: AlertInfo) -> AlertOut:
        return cls(**a.__dict__)


@router.get("/alerts", summary="Alerts after a cursor, oldest first", response_model=list[AlertOut])
def alerts(
    _: Watcher,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    return [AlertOut.of(a) for a in alerts_after(db=services.dep.db, after_id=after, limit=limit)]


class OutcomeIn(BaseModel):
    outcome: AlertOutcome = Field(examples=[AlertOutcome.CONFIRMED])


class OutcomeOut(BaseModel):
    alert: int
    outcome: AlertOutcome


Actor = Annotated[UserInfo, Depends(allow(Role.OPERATOR, Role.INVESTIGATOR))]


@router.post(
    "/alerts/{alert_id}/outcome",
    summary="Report what came of an alert (for transparency reports)",
    response_model=OutcomeOut,
)
def set_outcome(
    user: Actor,
    services: ServicesDep,
    alert_id: Annotated[int, Path(ge=1, le=2**62)],
    body: OutcomeIn,
) -> OutcomeOut:
    record_outcome(
        db=services.dep.db,
        audit=services.dep.audit,
        actor=user.actor,
        alert_id=alert_id,
        outcome=body.outcome,
    )
    return OutcomeOut(alert=alert_id, outcome=body.outcome)


@router.get(
    "/alerts/stream",
    summary="Live alerts as Server-Sent Events",
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event: alert"}},
)
async def stream(
    request: Request,
    watcher: Watcher,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Each alert is one ``event: alert`` with its id; reconnect with ``Last-Event-ID`` to
    resume. Alerts from other server processes arrive at their commit on PostgreSQL (LISTEN/NOTIFY)
    and within about a second on SQLite."""
    if last_event_id is not None and last_event_id.isdigit():
        cursor = int(last_event_id)
    else:
        cursor = await run_in_threadpool(latest_alert_id, db=services.dep.db)
    secret = credentials.credentials if credentials is not None else ""

    def still_allowed() -> bool:
        # The key or session that opened the stream must still be live (not revoked, signed
        # out, expired or idle; its user not disabled) and keep its role.
        again = user_for_bearer(db=services.dep.db, secret=secret, idle=services.session_idle)
        return again is not None and again.role == watcher.role

    return StreamingResponse(
        alert_events(
            db=services.dep.db,
            broker=services.broker,
            cursor=cursor,
            disconnected=request.is_disconnected,
            still_allowed=still_allowed,
            payload=lambda alert: AlertOut.of(alert).model_dump(mode="json"),
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
