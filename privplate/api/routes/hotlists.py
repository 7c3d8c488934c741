"""Hotlists and their entries (operators). Plates go in; only operators who ask to see a
list's plates get them back, and that viewing is audited."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from privplate.api.deps import ServicesDep, allow
from privplate.hotlists import EntryIn, EntryInfo, HotlistInfo, HotlistSource
from privplate.hotlists.csv_import import parse_entries
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.timestamps import Timestamp

router = APIRouter(tags=["hotlists"])
Operator = Annotated[UserInfo, Depends(allow(Role.OPERATOR))]
ListName = Annotated[str, Path(min_length=1, max_length=100, examples=["stolen-vehicles"])]


class HotlistIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["stolen-vehicles"])
    source: HotlistSource = Field(examples=[HotlistSource.STOLEN_VEHICLE])
    description: str = Field(default="", max_length=2000)
    max_entries: int | None = Field(default=None, ge=1, le=1_000_000)


class HotlistOut(BaseModel):
    id: uuid.UUID
    name: str
    source: HotlistSource
    description: str
    max_entries: int
    live_entries: int
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, h: HotlistInfo) -> HotlistOut:
        return cls(
            id=h.id,
            name=h.name,
            source=h.source,
            description=h.description,
            max_entries=h.max_entries,
            live_entries=h.live_entries,
            created_by=h.created_by,
            created_at=h.created_at,
        )


class EntryBody(BaseModel):
    plate: str = Field(min_length=1, max_length=32, examples=["7ABC123"])
    reason: str = Field(min_length=1, max_length=500, examples=["reported stolen 2026-11-20"])
    case_number: str = Field(min_length=1, max_length=64, examples=["SPD-2026-004211"])
    expires_at: Timestamp | None = None


class EntriesIn(BaseModel):
    entries: list[EntryBody] = Field(min_length=1, max_length=10_000)


class EntryOut(BaseModel):
    id: uuid.UUID
    hotlist: str
    reason: str
    case_number: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    removed_at: datetime | None
    plate: str | None = Field(default=None, description="Only with reveal=true.")

    @classmethod
    def of(cls, e: EntryInfo) -> EntryOut:
        return cls(
            id=e.id,
            hotlist=e.hotlist,
            reason=e.reason,
            case_number=e.case_number,
            created_by=e.created_by,
            created_at=e.created_at,
            expires_at=e.expires_at,
            removed_at=e.removed_at,
            plate=e.plate,
        )


@router.get("/hotlists", summary="List hotlists", response_model=list[HotlistOut])
def hotlists(_: Operator, services: ServicesDep) -> list[HotlistOut]:
    return [HotlistOut.of(h) for h in services.hotlists.all()]


@router.post("/hotlists", summary="Create a hotlist", status_code=201, response_model=HotlistOut)
def create_hotlist(body: HotlistIn, user: Operator, services: ServicesDep) -> HotlistOut:
    return HotlistOut.of(
        services.hotlists.create(
            actor=user.actor,
            name=body.name,
            source=body.source,
            description=body.description,
            max_entries=body.max_entries,
        )
    )


@router.get("/hotlists/{name}", summary="One hotlist", response_model=HotlistOut)
def hotlist(name: ListName, _: Operator, services: ServicesDep) -> HotlistOut:
    return HotlistOut.of(services.hotlists.get(name))


@router.get(
    "/hotlists/{name}/entries", summary="Live entries of a hotlist", response_model=list[EntryOut]
)
def entries(
    name: ListName,
    user: Operator,
    services: ServicesDep,
    reveal: Annotated[bool, Query(description="Include the plates (audited).")] = False,
) -> list[EntryOut]:
    return [
        EntryOut.of(e)
        for e in services.hotlists.entries(actor=user.actor, hotlist=name, reveal=reveal)
    ]


@router.post(
    "/hotlists/{name}/entries",
    summary="Add entries to a hotlist (all or nothing)",
    status_code=201,
    response_model=list[EntryOut],
)
def add_entries(
    name: ListName, body: EntriesIn, user: Operator, services: ServicesDep
) -> list[EntryOut]:
    added = services.hotlists.add_entries(
        actor=user.actor,
        hotlist=name,
        entries=[EntryIn(e.plate, e.reason, e.case_number, e.expires_at) for e in body.entries],
    )
    return [EntryOut.of(e) for e in added]


@router.post(
    "/hotlists/{name}/import",
    summary="Import entries from CSV (plate,reason,case_number[,expires_at])",
    status_code=201,
    response_model=list[EntryOut],
)
def import_csv(
    name: ListName,
    user: Operator,
    services: ServicesDep,
    csv_text: Annotated[
        str,
        Body(
            media_type="text/csv",
            max_length=5_000_000,
            examples=["plate,reason,case_number\n7ABC123,stolen 2026-11-20,SPD-2026-004211\n"],
        ),
    ],
) -> list[EntryOut]:
    added = services.hotlists.add_entries(
        actor=user.actor, hotlist=name, entries=parse_entries(csv_text)
    )
    return [EntryOut.of(e) for e in added]


@router.delete(
    "/hotlists/{name}/entries/{entry_id}", summary="Remove a hotlist entry", status_code=204
)
def remove_entry(
    name: ListName, entry_id: uuid.UUID, user: Operator, services: ServicesDep
) -> Response:
    services.hotlists.remove_entry(actor=user.actor, hotlist=name, entry_id=entry_id)
    return Response(status_code=204)
