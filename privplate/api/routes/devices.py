"""Edge devices: registration by operators (with a public key, or a one-time enrolment code
the device presents itself); key and hotlist sync for the devices themselves."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from privplate.api.deps import DeviceCaller, Public, ServicesDep, allow
from privplate.devices import enrolment, registry
from privplate.devices.epoch_answer import epoch_message
from privplate.devices.protocol import parse_headers, seal_to_device
from privplate.devices.registry import DeviceInfo
from privplate.errors import DeviceRejected, InvalidRequest
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role

router = APIRouter(tags=["devices"])
Operator = Annotated[UserInfo, Depends(allow(Role.OPERATOR, Role.ADMIN))]


class DeviceIn(BaseModel):
    id: str = Field(min_length=1, max_length=64, examples=["edge-gate-north"])
    name: str = Field(default="", max_length=200)
    public_key: str = Field(
        min_length=64,
        max_length=64,
        description="Ed25519 public key, 64 hex digits",
        examples=["d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"],
    )
    cameras: list[str] = Field(min_length=1, max_length=64, examples=[["gate-north"]])


class DeviceOut(BaseModel):
    id: str
    name: str
    public_key: str
    cameras: list[str]
    created_at: datetime
    revoked: bool

    @classmethod
    def of(cls, d: DeviceInfo) -> DeviceOut:
        return cls(
            id=d.id,
            name=d.name,
            public_key=d.public_key.hex(),
            cameras=list(d.cameras),
            created_at=d.created_at,
            revoked=d.revoked,
        )


class EpochOut(BaseModel):
    epoch_id: int
    starts_at: datetime
    ends_at: datetime
    sealed_key: str = Field(description="base64 sealed box of the epoch key to the device key")
    fold_confusables: bool
    confusables: dict[str, str]
    evidence_public_key: str | None = Field(
        description="X to seal evidence to (hex); null until a key ceremony was held"
    )
    signature: str = Field(
        description="base64 Ed25519 signature by the server's audit key (the key an enrolled "
        "edge pinned) over this answer and the request's nonce (crypto/SPEC.md §10.4)"
    )


class HotlistTokenOut(BaseModel):
    token: str = Field(description="32 hex digits")
    hotlist: str


class HotlistTokensOut(BaseModel):
    epoch_id: int
    tokens: list[HotlistTokenOut]


@router.get("/devices", summary="List edge devices", response_model=list[DeviceOut])
def devices(_: Operator, services: ServicesDep) -> list[DeviceOut]:
    return [DeviceOut.of(d) for d in registry.list_devices(db=services.dep.db)]


@router.post(
    "/devices", summary="Register an edge device", status_code=201, response_model=DeviceOut
)
def add_device(body: DeviceIn, user: Operator, services: ServicesDep) -> DeviceOut:
    try:
        key = bytes.fromhex(body.public_key)
    except ValueError:
        raise InvalidRequest("public_key must be 64 hex digits") from None
    return DeviceOut.of(
        registry.register_device(
            db=services.dep.db,
            audit=services.dep.audit,
            actor=user.actor,
            device_id=body.id,
            public_key=key,
            cameras=body.cameras,
            name=body.name,
        )
    )


class EnrolmentCodeIn(BaseModel):
    cameras: list[str] = Field(min_length=1, max_length=64, examples=[["gate-1", "gate-2"]])
    name: str = Field(default="", max_length=200, description="The device's name, if known")
    minutes: int = Field(
        default=enrolment.DEFAULT_MINUTES,
        ge=1,
        le=enrolment.MAX_MINUTES,
        description="How long the code can be used",
    )


class EnrolmentCodeOut(BaseModel):
    id: str = Field(description="Names the code on the record (never the code)")
    code: str = Field(description="The one-time code: shown once, stored only as a keyed hash")
    cameras: list[str]
    name: str
    expires_at: datetime
    server_key: str = Field(
        description="The key the enrolled edge pins (the audit log's note verifier key); "
        "give it to whoever enrols, to check with `privplate edge enrol --server-key`"
    )


class EnrolIn(BaseModel):
    code: str = Field(
        min_length=1,
        max_length=64,
        description="The one-time code as printed (case, spaces and dashes do not matter)",
        examples=["7KQ2M-XH4TR-9BD3W-CN6PA"],
    )
    device_id: str = Field(min_length=1, max_length=64, examples=["edge-gate-north"])
    name: str = Field(default="", max_length=200)
    public_key: str = Field(
        min_length=64, max_length=64, description="The device's Ed25519 public key, 64 hex digits"
    )


class FoldingOut(BaseModel):
    fold_confusables: bool
    confusables: dict[str, str]


class EnrolledOut(BaseModel):
    device_id: str
    name: str
    cameras: list[str] = Field(description="The cameras this device may report for")
    server_key: str = Field(
        description="The server's identity to pin: its audit log's note verifier key "
        "(name+hash+base64), which signs its checkpoints"
    )
    server_url: str = Field(description="The URL this request reached the server at (a hint)")
    folding: FoldingOut = Field(
        description="How the server folds look-alike characters (settings.plates): the edge "
        "must do the same, or its tokens would never match"
    )
    enrolled_at: datetime


@router.post(
    "/devices/enrolment-codes",
    summary="Make a one-time code that enrols an edge device for named cameras",
    status_code=201,
    response_model=EnrolmentCodeOut,
)
def add_enrolment_code(
    body: EnrolmentCodeIn, user: Operator, services: ServicesDep
) -> EnrolmentCodeOut:
    issued = enrolment.create_code(
        db=services.dep.db,
        audit=services.dep.audit,
        secret=services.secret,
        actor=user.actor,
        cameras=body.cameras,
        name=body.name,
        minutes=body.minutes,
    )
    return EnrolmentCodeOut(
        id=str(issued.id),
        code=issued.code,
        cameras=list(issued.cameras),
        name=issued.name,
        expires_at=issued.expires_at,
        server_key=services.dep.audit.signer.note_verifier.vkey(),
    )


@router.post(
    enrolment.ENROL_PATH,
    summary="Enrol an edge device with a one-time code (signed with the device's new key)",
    status_code=201,
    response_model=EnrolledOut,
    dependencies=[Public],
)
async def enrol_device(body: EnrolIn, request: Request, services: ServicesDep) -> EnrolledOut:
    """No account: the code is the credential. The request is signed like every device request
    (crypto/SPEC.md, "Device requests"), with the key being enrolled. Unknown (401), used (409)
    and expired (410) codes are refused and audited; too many refusals from one address answer
    429 with Retry-After."""
    raw = await request.body()
    settings = services.dep.settings
    try:
        key = bytes.fromhex(body.public_key)
    except ValueError:
        raise InvalidRequest("public_key must be 64 hex digits") from None
    try:
        enrolment.check_possession(
            public_key=key,
            device_id=body.device_id,
            signed=parse_headers(dict(request.headers)),
            body=raw,
            max_age=timedelta(seconds=settings.server.device_request_max_age_seconds),
        )
    except DeviceRejected as exc:
        await run_in_threadpool(services.refusals.refused, path=request.url.path, reason=str(exc))
        raise
    enrolled = await run_in_threadpool(
        lambda: enrolment.enrol(
            db=services.dep.db,
            audit=services.dep.audit,
            secret=services.secret,
            limits=enrolment.enrolment_limits(settings.server, services.secret),
            refusals=services.refusals,
            code=body.code,
            public_key=key,
            device_id=body.device_id,
            name=body.name,
            # Behind a proxy, uvicorn's --proxy-headers make this the client (as for sign-in).
            address=request.client.host if request.client is not None else None,
        )
    )
    request.state.actor = enrolled.device.actor
    device = enrolled.device
    return EnrolledOut(
        device_id=device.id,
        name=device.name,
        cameras=list(device.cameras),
        server_key=services.dep.audit.signer.note_verifier.vkey(),
        server_url=str(request.base_url).rstrip("/"),
        folding=FoldingOut(
            fold_confusables=settings.plates.fold_confusables,
            confusables=settings.plates.confusables,
        ),
        enrolled_at=device.created_at,
    )


@router.post("/devices/{device_id}/revoke", summary="Revoke an edge device", status_code=204)
def revoke_device(device_id: str, user: Operator, services: ServicesDep) -> None:
    registry.revoke_device(
        db=services.dep.db, audit=services.dep.audit, actor=user.actor, device_id=device_id
    )


@router.get(
    "/device/epoch",
    summary="The current epoch key, sealed to the calling device",
    response_model=EpochOut,
)
def device_epoch(device: DeviceCaller, request: Request, services: ServicesDep) -> EpochOut:
    """Edges tokenize plates with this key; it is sealed to the device's own key, so only that
    device can open it, and signed with the audit key over the request's nonce, so the edge
    knows it comes from the server it enrolled with (privplate/devices/epoch_answer.py)."""
    key = services.dep.keyring.current_key()
    plates = services.dep.settings.plates
    sealed = seal_to_device(device.public_key, key.key)
    evidence = services.evidence_public_key()
    message = epoch_message(
        device_id=device.id,
        nonce=parse_headers(dict(request.headers)).nonce,  # checked by the device guard
        epoch_id=key.epoch_id,
        starts_at=key.starts_at,
        ends_at=key.ends_at,
        sealed_key=sealed,
        fold_confusables=plates.fold_confusables,
        confusables=plates.confusables,
        evidence_public_key=evidence,
    )
    return EpochOut(
        epoch_id=key.epoch_id,
        starts_at=key.starts_at,
        ends_at=key.ends_at,
        sealed_key=base64.b64encode(sealed).decode(),
        fold_confusables=plates.fold_confusables,
        confusables=plates.confusables,
        evidence_public_key=evidence,
        signature=base64.b64encode(services.dep.audit.signer.sign(message)).decode(),
    )


@router.get(
    "/device/hotlist-tokens",
    summary="Hotlist tokens of one epoch, for alerts on the edge",
    response_model=HotlistTokensOut,
)
def device_hotlist_tokens(
    device: DeviceCaller,
    services: ServicesDep,
    epoch_id: Annotated[int, Query(ge=0, le=2**62)],
) -> HotlistTokensOut:
    del device
    tokens = services.hotlist_tokens.epoch_tokens(epoch_id)
    return HotlistTokensOut(
        epoch_id=epoch_id,
        tokens=[HotlistTokenOut(token=t.hex(), hotlist=name) for t, name in tokens],
    )
