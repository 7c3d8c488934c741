"""The only search there is: "was this plate seen", for an allowed purpose, with a case."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from privplate.api.deps import ServicesDep, allow
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.approvals import PendingSearch
from privplate.policy.queries import QueryAnswer, QueryRecord, QueryRequest, list_queries
from privplate.store.approval_models import ApprovalStatus
from privplate.timestamps import Timestamp

router = APIRouter(tags=["queries"])
Investigator = Annotated[UserInfo, Depends(allow(Role.INVESTIGATOR))]


class QueryIn(BaseModel):
    plate: str = Field(min_length=1, max_length=32, examples=["7ABC123"])
    start: Timestamp = Field(examples=["2026-11-20T00:00:00Z"])
    end: Timestamp = Field(examples=["2026-11-22T00:00:00Z"])
    purpose: Purpose = Field(examples=[Purpose.STOLEN_VEHICLE])
    case_number: str = Field(min_length=1, max_length=64, examples=["SPD-2026-004211"])
    justification: str = Field(
        min_length=1,
        max_length=2000,
        examples=["Vehicle reported stolen from the Elm St lot on 2026-11-20; owner statement."],
    )
    agreement_id: uuid.UUID | None = Field(
        default=None, description="Sharing agreement, for a query on another agency's behalf."
    )


class MatchOut(BaseModel):
    read_id: uuid.UUID
    camera_id: str
    observed_at: datetime
    confidence: float
    evidence_id: uuid.UUID | None
    via_alternate: bool = Field(description="Only an alternate OCR reading matched.")


class QueryOut(BaseModel):
    """Same shape whether or not anything matched."""

    query_id: uuid.UUID
    start: datetime
    end: datetime
    matches: list[MatchOut]

    @classmethod
    def of(cls, answer: QueryAnswer) -> QueryOut:
        return cls(
            query_id=answer.query_id,
            start=answer.start,
            end=answer.end,
            matches=[MatchOut(**m.__dict__) for m in answer.matches],
        )


class PendingOut(BaseModel):
    """A search filed for approval: who asked, why, for which window; never the plate."""

    id: uuid.UUID
    requested_by: str
    purpose: str
    case_number: str
    justification: str
    agreement_id: uuid.UUID | None
    window_start: datetime
    window_end: datetime
    created_at: datetime
    expires_at: datetime = Field(
        description="Pending: when it expires undecided. Approved: by when it must be run."
    )
    status: ApprovalStatus
    decided_at: datetime | None
    decided_by: str | None
    note: str
    query_id: uuid.UUID | None = Field(description="The recorded query, once run.")
    ran_at: datetime | None

    @classmethod
    def of(cls, p: PendingSearch) -> PendingOut:
        return cls(**p.__dict__)


class QueryRecordOut(BaseModel):
    id: uuid.UUID
    user: str
    created_at: datetime
    purpose: str
    case_number: str
    justification: str
    agreement_id: uuid.UUID | None
    window_start: datetime
    window_end: datetime
    outcome: str = Field(examples=["answered", "denied", "refused"])
    reason: str
    match_count: int

    @classmethod
    def of(cls, q: QueryRecord) -> QueryRecordOut:
        return cls(**q.__dict__)


@router.post(
    "/queries",
    summary="Ask whether a plate was seen",
    response_model=QueryOut,
    responses={
        202: {
            "model": PendingOut,
            "description": "The purpose needs a second person's approval "
            "(queries.approval_required): filed, nothing looked up; run it once approved "
            "(POST /search-approvals/{approval_id}/run).",
        }
    },
)
def query(body: QueryIn, user: Investigator, services: ServicesDep) -> QueryOut | JSONResponse:
    """Refused (and recorded, and flagged to compliance) for a forbidden or unlisted purpose,
    a forbidden term in the justification or case number, a missing case number, a window
    that is too long, an unknown sharing agreement, or a used-up quota."""
    answer = services.search_approvals.submit(
        user,
        QueryRequest(
            plate=body.plate,
            start=body.start,
            end=body.end,
            purpose=body.purpose,
            case_number=body.case_number,
            justification=body.justification,
            agreement_id=body.agreement_id,
        ),
    )
    if isinstance(answer, PendingSearch):
        pending = PendingOut.of(answer)
        return JSONResponse(status_code=202, content=jsonable_encoder(pending))
    services.counters["queries"] += 1
    return QueryOut.of(answer)


@router.get("/queries/mine", summary="My own queries", response_model=list[QueryRecordOut])
def my_queries(user: Investigator, services: ServicesDep) -> list[QueryRecordOut]:
    return [QueryRecordOut.of(q) for q in list_queries(db=services.dep.db, user_id=user.id)]
