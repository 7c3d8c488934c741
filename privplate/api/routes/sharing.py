"""Sharing agreements with other agencies (none by default)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from privplate.api.deps import ServicesDep, allow
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy import sharing

router = APIRouter(tags=["sharing"])
Admin = Annotated[UserInfo, Depends(allow(Role.ADMIN))]
Viewer = Annotated[UserInfo, Depends(allow(Role.ADMIN, Role.COMPLIANCE, Role.AUDITOR))]


class AgreementIn(BaseModel):
    agency: str = Field(min_length=1, max_length=200, examples=["Shelbyville PD"])
    out_of_state: bool
    declaration_signed: bool = False
    document_reference: str = Field(min_length=1, max_length=500, examples=["MOU 2026-14"])
    purposes: list[Purpose] = Field(min_length=1, examples=[[Purpose.STOLEN_VEHICLE]])
    expires_at: datetime


class AgreementOut(BaseModel):
    id: uuid.UUID
    agency: str
    out_of_state: bool
    declaration_signed: bool
    document_reference: str
    purposes: list[Purpose]
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked: bool

    @classmethod
    def of(cls, a: sharing.AgreementInfo) -> AgreementOut:
        return cls(**{**a.__dict__, "purposes": list(a.purposes)})


@router.get("/sharing-agreements", summary="Sharing agreements", response_model=list[AgreementOut])
def agreements(_: Viewer, services: ServicesDep) -> list[AgreementOut]:
    return [AgreementOut.of(a) for a in sharing.list_agreements(db=services.dep.db)]


@router.post(
    "/sharing-agreements",
    summary="Record a sharing agreement",
    status_code=201,
    response_model=AgreementOut,
)
def create(body: AgreementIn, admin: Admin, services: ServicesDep) -> AgreementOut:
    return AgreementOut.of(
        sharing.create_agreement(
            db=services.dep.db,
            audit=services.dep.audit,
            actor=admin.actor,
            agency=body.agency,
            out_of_state=body.out_of_state,
            declaration_signed=body.declaration_signed,
            document_reference=body.document_reference,
            purposes=body.purposes,
            expires_at=body.expires_at,
            policy=services.policy,
        )
    )


@router.post(
    "/sharing-agreements/{agreement_id}/revoke", summary="Revoke an agreement", status_code=204
)
def revoke(agreement_id: uuid.UUID, admin: Admin, services: ServicesDep) -> Response:
    sharing.revoke_agreement(
        db=services.dep.db, audit=services.dep.audit, actor=admin.actor, agreement_id=agreement_id
    )
    return Response(status_code=204)
