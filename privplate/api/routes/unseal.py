"""Two-person unseal: investigators request, compliance officers approve with partial
decryptions made on their own machines, the requester fetches the watermarked image."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from privplate.api.deps import ServicesDep, allow
from privplate.errors import InvalidRequest
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.unseal.workflow import RequestInfo, RequestStatus

router = APIRouter(tags=["unseal"])
Investigator = Annotated[UserInfo, Depends(allow(Role.INVESTIGATOR))]
Officer = Annotated[UserInfo, Depends(allow(Role.COMPLIANCE))]
Viewer = Annotated[UserInfo, Depends(allow(Role.INVESTIGATOR, Role.COMPLIANCE, Role.AUDITOR))]
KeyViewer = Annotated[
    UserInfo, Depends(allow(Role.ADMIN, Role.OPERATOR, Role.COMPLIANCE, Role.AUDITOR))
]


class UnsealIn(BaseModel):
    evidence_id: uuid.UUID
    case_number: str = Field(min_length=1, max_length=64, examples=["SPD-2026-004211"])
    justification: str = Field(
        min_length=1,
        max_length=2000,
        examples=["Hit-and-run on Elm St 2026-11-20; need the vehicle's image for the report."],
    )


class RequestOut(BaseModel):
    id: uuid.UUID
    evidence_id: uuid.UUID
    requested_by: str
    case_number: str
    justification: str
    created_at: datetime
    expires_at: datetime
    status: RequestStatus
    reason: str
    share_set_id: uuid.UUID
    public_key: str = Field(description="Evidence public key X (hex)")
    threshold: int
    ephemeral: str = Field(description="The item's point R (hex): what officers decrypt")
    approvals: int

    @classmethod
    def of(cls, r: RequestInfo) -> RequestOut:
        return cls(
            id=r.id,
            evidence_id=r.evidence_id,
            requested_by=r.requested_by,
            case_number=r.case_number,
            justification=r.justification,
            created_at=r.created_at,
            expires_at=r.expires_at,
            status=r.status,
            reason=r.reason,
            share_set_id=r.share_set_id,
            public_key=r.public_key.hex(),
            threshold=r.threshold,
            ephemeral=r.ephemeral.hex(),
            approvals=r.approvals,
        )


class ApprovalIn(BaseModel):
    share_index: int = Field(ge=1, le=255)
    partial: str = Field(min_length=64, max_length=64, description="D_i = x_i*R (hex)")
    proof: str = Field(min_length=128, max_length=128, description="Chaum-Pedersen (c, s) hex")


class DenyIn(BaseModel):
    why: str = Field(min_length=1, max_length=2000, examples=["No case nexus shown."])


class CommitmentOut(BaseModel):
    share_index: int
    officer: str
    commitment: str


class EvidenceKeyOut(BaseModel):
    public_key: str
    activated_at: datetime
    share_set_id: uuid.UUID
    threshold: int
    commitments: list[CommitmentOut]


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidRequest(f"{what} must be hex") from None


@router.post(
    "/unseal/requests",
    summary="Ask to unseal one evidence item",
    status_code=201,
    response_model=RequestOut,
)
def file_request(body: UnsealIn, user: Investigator, services: ServicesDep) -> RequestOut:
    return RequestOut.of(
        services.unseal.request(
            user,
            evidence_id=body.evidence_id,
            case_number=body.case_number,
            justification=body.justification,
        )
    )


@router.get(
    "/unseal/requests",
    summary="Unseal requests (the officers' queue)",
    response_model=list[RequestOut],
)
def queue(
    user: Viewer, services: ServicesDep, status: Annotated[RequestStatus | None, Query()] = None
) -> list[RequestOut]:
    return [RequestOut.of(r) for r in services.unseal.queue(viewer=user, status=status)]


@router.get(
    "/unseal/requests/{request_id}", summary="One unseal request", response_model=RequestOut
)
def one(request_id: uuid.UUID, user: Viewer, services: ServicesDep) -> RequestOut:
    return RequestOut.of(services.unseal.get(request_id, viewer=user))


@router.post(
    "/unseal/requests/{request_id}/approvals",
    summary="Approve with a partial decryption made with your own share",
    response_model=RequestOut,
)
def approve(
    request_id: uuid.UUID, body: ApprovalIn, officer: Officer, services: ServicesDep
) -> RequestOut:
    return RequestOut.of(
        services.unseal.approve(
            officer,
            request_id,
            share_index=body.share_index,
            partial=_hex(body.partial, "partial"),
            proof=_hex(body.proof, "proof"),
        )
    )


@router.post(
    "/unseal/requests/{request_id}/deny",
    summary="Deny a request (ends it)",
    response_model=RequestOut,
)
def deny(
    request_id: uuid.UUID, body: DenyIn, officer: Officer, services: ServicesDep
) -> RequestOut:
    return RequestOut.of(services.unseal.deny(officer, request_id, why=body.why))


@router.post(
    "/unseal/requests/{request_id}/withdraw",
    summary="Withdraw your own pending request (ends it)",
    response_model=RequestOut,
)
def withdraw(request_id: uuid.UUID, user: Investigator, services: ServicesDep) -> RequestOut:
    return RequestOut.of(services.unseal.withdraw(user, request_id))


@router.get(
    "/unseal/requests/{request_id}/image",
    summary="The released image (watermarked), for the requester",
    response_model=None,
    responses={200: {"content": {"image/jpeg": {}}, "description": "JPEG"}},
)
def image(
    request_id: uuid.UUID,
    user: Investigator,
    services: ServicesDep,
    part: Annotated[Literal["crop", "frame"], Query()] = "crop",
) -> Response:
    released = services.unseal.fetch(user, request_id)
    body = released.crop_jpeg if part == "crop" else released.frame_jpeg
    return Response(body, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/evidence-keys/current",
    summary="The evidence public key and officers' commitments",
    response_model=EvidenceKeyOut,
)
def current_key(_: KeyViewer, services: ServicesDep) -> EvidenceKeyOut:
    key_set = services.unseal.current_key()
    return EvidenceKeyOut(
        public_key=key_set.key.public_key.hex(),
        activated_at=key_set.key.activated_at,
        share_set_id=key_set.share_set_id,
        threshold=key_set.threshold,
        commitments=[
            CommitmentOut(
                share_index=c.share_index, officer=c.officer, commitment=c.commitment.hex()
            )
            for c in key_set.commitments
        ],
    )
