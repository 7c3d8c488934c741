"""Alerts: recent ones, and a Server-Sent Events stream for consoles."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from privplate.alerts import AlertInfo, alerts_after, latest_alert_id
from privplate.alerts.outcomes import AlertOutcome, record_outcome
from privplate.api.deps import ServicesDep, allow
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role

router = APIRouter(tags=["alerts"])
Watcher = Annotated[UserInfo, Depends(allow(Role.OPERATOR, Role.INVESTIGATOR, Role.COMPLIANCE))]
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


class AlertOut(BaseModel):
    id: int
    read_id: uuid.UUID
    observed_at: datetime
    camera_id: str
    hotlist: str
    entry_id: uuid.UUID
    reason: str
    case_number: str
    via_alternate: bool
    confidence: float
    evidence_id: uuid.UUID | None
    created_at: datetime
    outcome: AlertOutcome | None = Field(
        default=None, description="what came of it, once reported (POST /alerts/{id}/outcome)"
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
    _: Watcher,
    services: ServicesDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Each alert is one ``event: alert`` with its id; reconnect with ``Last-Event-ID`` to
    resume. Alerts from other server processes arrive within about a second."""
    if last_event_id is not None and last_event_id.isdigit():
        cursor = int(last_event_id)
    else:
        cursor = await run_in_threadpool(latest_alert_id, db=services.dep.db)
    return StreamingResponse(
        _events(request, services, cursor),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(request: Request, services: ServicesDep, cursor: int) -> AsyncIterator[bytes]:
    wake = services.broker.subscribe()
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    try:
        yield b": connected\n\n"
        while not await request.is_disconnected():
            wake.clear()
            fresh = await run_in_threadpool(alerts_after, db=services.dep.db, after_id=cursor)
            for alert in fresh:
                cursor = alert.id
                data = json.dumps(AlertOut.of(alert).model_dump(mode="json"))
                yield f"id: {alert.id}\nevent: alert\ndata: {data}\n\n".encode()
                last_sent = loop.time()
            if loop.time() - last_sent > KEEPALIVE_SECONDS:
                yield b": keep-alive\n\n"
                last_sent = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), POLL_SECONDS)
    finally:
        services.broker.unsubscribe(wake)
