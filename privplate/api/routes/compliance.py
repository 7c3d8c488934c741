"""What compliance officers review: flags (quota hits, denied queries) and every query."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from privplate.api.deps import ServicesDep, allow
from privplate.api.routes.queries import QueryRecordOut
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.flags import FlagInfo, FlagKind, close_flag, list_flags
from privplate.policy.queries import list_queries
from privplate.store.server_models import QueryOutcome

router = APIRouter(tags=["compliance"])
Officer = Annotated[UserInfo, Depends(allow(Role.COMPLIANCE))]
Reviewer = Annotated[UserInfo, Depends(allow(Role.COMPLIANCE, Role.AUDITOR))]


class FlagOut(BaseModel):
    id: uuid.UUID
    kind: FlagKind
    subject: str
    day: str
    created_at: datetime
    occurrences: int
    details: dict[str, Any]
    reviewed_by: str | None
    reviewed_at: datetime | None
    resolution: str | None

    @classmethod
    def of(cls, f: FlagInfo) -> FlagOut:
        return cls(**f.__dict__)


class ReviewIn(BaseModel):
    resolution: str = Field(
        min_length=1, max_length=2000, examples=["Spoke with the investigator; legitimate case."]
    )


@router.get("/compliance/flags", summary="Compliance flags", response_model=list[FlagOut])
def flags(
    _: Reviewer,
    services: ServicesDep,
    open_only: Annotated[bool, Query()] = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[FlagOut]:
    return [FlagOut.of(f) for f in list_flags(db=services.dep.db, open_only=open_only, limit=limit)]


@router.post(
    "/compliance/flags/{flag_id}/review",
    summary="Close a flag with a resolution",
    response_model=FlagOut,
)
def review(flag_id: uuid.UUID, body: ReviewIn, officer: Officer, services: ServicesDep) -> FlagOut:
    dep = services.dep
    info = close_flag(
        db=dep.db,
        audit=dep.audit,
        flag_id=flag_id,
        reviewer=officer.actor,
        resolution=body.resolution,
    )
    return FlagOut.of(info)


@router.get(
    "/compliance/queries",
    summary="Every plate query (never the plate)",
    response_model=list[QueryRecordOut],
)
def queries(
    _: Reviewer,
    services: ServicesDep,
    outcome: Annotated[QueryOutcome | None, Query()] = None,
    purpose: Annotated[Purpose | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[QueryRecordOut]:
    return [
        QueryRecordOut.of(q)
        for q in list_queries(db=services.dep.db, outcome=outcome, purpose=purpose, limit=limit)
    ]
