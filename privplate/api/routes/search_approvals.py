"""Searches that wait for a second person: the requester's status and run, the compliance
officers' queue, approve and deny. No route shows the plate of a pending search to anyone."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from privplate.api.deps import ServicesDep, allow
from privplate.api.routes.queries import PendingOut, QueryOut
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.policy.approvals import VIEWERS
from privplate.store.approval_models import ApprovalStatus

router = APIRouter(tags=["search approvals"])
Investigator = Annotated[UserInfo, Depends(allow(Role.INVESTIGATOR))]
Officer = Annotated[UserInfo, Depends(allow(Role.COMPLIANCE))]
Viewer = Annotated[UserInfo, Depends(allow(*VIEWERS))]


class ApproveIn(BaseModel):
    note: str = Field(default="", max_length=2000, examples=["Case nexus checked with the DA."])


class DenyIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000, examples=["No nexus to the case shown."])


@router.get(
    "/search-approvals",
    summary="Searches filed for approval (the officers' queue; an investigator's own)",
    response_model=list[PendingOut],
)
def queue(
    user: Viewer,
    services: ServicesDep,
    status: Annotated[ApprovalStatus | None, Query()] = None,
) -> list[PendingOut]:
    return [PendingOut.of(p) for p in services.search_approvals.queue(user, status=status)]


@router.get(
    "/search-approvals/{approval_id}",
    summary="One search filed for approval: its status",
    response_model=PendingOut,
)
def one(approval_id: uuid.UUID, user: Viewer, services: ServicesDep) -> PendingOut:
    return PendingOut.of(services.search_approvals.get(user, approval_id))


@router.post(
    "/search-approvals/{approval_id}/approve",
    summary="Approve a search (a compliance officer other than the requester)",
    response_model=PendingOut,
)
def approve(
    approval_id: uuid.UUID, body: ApproveIn, user: Officer, services: ServicesDep
) -> PendingOut:
    return PendingOut.of(services.search_approvals.approve(user, approval_id, note=body.note))


@router.post(
    "/search-approvals/{approval_id}/deny",
    summary="Deny a search; its encrypted plate is deleted",
    response_model=PendingOut,
)
def deny(approval_id: uuid.UUID, body: DenyIn, user: Officer, services: ServicesDep) -> PendingOut:
    return PendingOut.of(services.search_approvals.deny(user, approval_id, note=body.note))


@router.post(
    "/search-approvals/{approval_id}/run",
    summary="Run an approved search (its requester, once)",
    response_model=QueryOut,
)
def run(approval_id: uuid.UUID, user: Investigator, services: ServicesDep) -> QueryOut:
    """The search runs now, as an ordinary query of the requester's (their quota and every
    rule apply); the answer is given this once."""
    answer = services.search_approvals.run(user, approval_id)
    services.counters["queries"] += 1
    return QueryOut.of(answer)
