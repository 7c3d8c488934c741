"""Legal holds: an investigator requests one, a compliance officer approves it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from privplate.api.deps import ServicesDep, allow
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.retention import holds as hold_store

router = APIRouter(tags=["holds"])
Investigator = Annotated[UserInfo, Depends(allow(Role.INVESTIGATOR))]
Officer = Annotated[UserInfo, Depends(allow(Role.COMPLIANCE))]
Releaser = Annotated[UserInfo, Depends(allow(Role.INVESTIGATOR, Role.COMPLIANCE))]
Viewer = Annotated[UserInfo, Depends(allow(Role.INVESTIGATOR, Role.COMPLIANCE, Role.AUDITOR))]


class HoldIn(BaseModel):
    kind: hold_store.HoldKind
    target_id: uuid.UUID
    case_number: str = Field(min_length=1, max_length=64, examples=["SPD-2026-004211"])
    justification: str = Field(min_length=1, max_length=2000)
    days: int = Field(default=90, ge=1, le=3650)


class HoldOut(BaseModel):
    id: uuid.UUID
    kind: str
    target_id: uuid.UUID
    case_number: str
    requested_by: str
    approved_by: str | None
    expires_at: datetime
    released_at: datetime | None

    @classmethod
    def of(cls, h: hold_store.HoldInfo) -> HoldOut:
        return cls(**h.__dict__)


@router.get("/holds", summary="Legal holds", response_model=list[HoldOut])
def holds(_: Viewer, services: ServicesDep) -> list[HoldOut]:
    return [HoldOut.of(h) for h in hold_store.list_holds(db=services.dep.db)]


@router.post("/holds", summary="Request a legal hold", status_code=201, response_model=HoldOut)
def request_hold(body: HoldIn, user: Investigator, services: ServicesDep) -> HoldOut:
    services.policy.check_case_number(body.case_number)
    services.policy.screen("justification", body.justification)
    return HoldOut.of(
        hold_store.request_hold(
            db=services.dep.db,
            audit=services.dep.audit,
            kind=body.kind,
            target_id=body.target_id,
            case_number=body.case_number,
            justification=body.justification,
            requested_by=user.actor,
            duration=timedelta(days=body.days),
        )
    )


@router.post("/holds/{hold_id}/approve", summary="Approve a legal hold", response_model=HoldOut)
def approve_hold(hold_id: uuid.UUID, officer: Officer, services: ServicesDep) -> HoldOut:
    return HoldOut.of(
        hold_store.approve_hold(
            db=services.dep.db,
            audit=services.dep.audit,
            hold_id=hold_id,
            approved_by=officer.actor,
        )
    )


@router.post("/holds/{hold_id}/release", summary="Release a legal hold", status_code=204)
def release_hold(hold_id: uuid.UUID, user: Releaser, services: ServicesDep) -> Response:
    hold_store.release_hold(
        db=services.dep.db, audit=services.dep.audit, hold_id=hold_id, released_by=user.actor
    )
    return Response(status_code=204)
