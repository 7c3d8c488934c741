"""What compliance officers review: flags (quota hits, denied queries), every query, and the
spot checks (searches and hand-made hotlist entries drawn for review)."""

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
from privplate.policy.review import (
    MAX_NOTE,
    DrawReason,
    ReviewInfo,
    ReviewItem,
    SubjectKind,
    Verdict,
    list_reviews,
    record_verdict,
    review_item,
)
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


# -- spot checks ---------------------------------------------------------------------------


class SpotCheckOut(BaseModel):
    id: uuid.UUID
    kind: SubjectKind
    subject_id: uuid.UUID
    requester: str
    drawn_at: datetime
    reason: DrawReason
    terms: list[str] = Field(description="Forbidden-purpose terms the screen came close to.")
    reviewer: str | None
    reviewed_at: datetime | None
    verdict: Verdict | None
    note: str

    @classmethod
    def of(cls, r: ReviewInfo) -> SpotCheckOut:
        return cls(**r.__dict__)


class DrawnSearchOut(BaseModel):
    """What the reviewer reads about a drawn search: never the plate (none is stored)."""

    requester: str
    created_at: datetime
    purpose: str
    case_number: str
    justification: str
    window_start: datetime
    window_end: datetime
    agreement_id: uuid.UUID | None
    outcome: str
    match_count: int


class DrawnEntryOut(BaseModel):
    """What the reviewer reads about a drawn hotlist entry: never its plate."""

    hotlist: str
    reason: str
    case_number: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    removed_at: datetime | None


class SpotCheckItemOut(BaseModel):
    review: SpotCheckOut
    search: DrawnSearchOut | None = Field(
        description="The drawn search; null for an entry, or once retention deleted the record."
    )
    hotlist_entry: DrawnEntryOut | None = Field(
        description="The drawn entry; null for a search, or once retention deleted the entry."
    )

    @classmethod
    def of(cls, item: ReviewItem) -> SpotCheckItemOut:
        return cls(
            review=SpotCheckOut.of(item.review),
            search=DrawnSearchOut(**item.search.__dict__) if item.search else None,
            hotlist_entry=DrawnEntryOut(**item.hotlist_entry.__dict__)
            if item.hotlist_entry
            else None,
        )


class VerdictIn(BaseModel):
    verdict: Verdict = Field(examples=[Verdict.CONSISTENT])
    note: str = Field(
        min_length=1,
        max_length=MAX_NOTE,
        examples=["Case file SPD-2026-004211 shows the stolen-vehicle report; consistent."],
    )


@router.get(
    "/compliance/reviews",
    summary="The spot-check queue: open items first",
    response_model=list[SpotCheckOut],
)
def reviews(
    _: Reviewer,
    services: ServicesDep,
    open_only: Annotated[bool, Query()] = False,
    reason: Annotated[DrawReason | None, Query()] = None,
    kind: Annotated[SubjectKind | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SpotCheckOut]:
    found = list_reviews(
        db=services.dep.db, open_only=open_only, reason=reason, kind=kind, limit=limit
    )
    return [SpotCheckOut.of(r) for r in found]


@router.get(
    "/compliance/reviews/{review_id}",
    summary="One spot check, with the search or entry it is about",
    response_model=SpotCheckItemOut,
)
def review_one(review_id: uuid.UUID, _: Reviewer, services: ServicesDep) -> SpotCheckItemOut:
    return SpotCheckItemOut.of(review_item(db=services.dep.db, review_id=review_id))


@router.post(
    "/compliance/reviews/{review_id}/verdict",
    summary="Record the verdict on a spot check (once)",
    response_model=SpotCheckOut,
)
def verdict(
    review_id: uuid.UUID, body: VerdictIn, officer: Officer, services: ServicesDep
) -> SpotCheckOut:
    dep = services.dep
    info = record_verdict(
        db=dep.db,
        audit=dep.audit,
        review_id=review_id,
        reviewer=officer,
        verdict=body.verdict,
        note=body.note,
    )
    return SpotCheckOut.of(info)
