"""Edge devices: registration by operators; key and hotlist sync for the devices themselves."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from privplate.api.deps import DeviceCaller, ServicesDep, allow
from privplate.devices import registry
from privplate.devices.protocol import seal_to_device
from privplate.devices.registry import DeviceInfo
from privplate.errors import InvalidRequest
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
def device_epoch(device: DeviceCaller, services: ServicesDep) -> EpochOut:
    """Edges tokenize plates with this key; it is sealed to the device's own key, so only that
    device can open it."""
    key = services.dep.keyring.current_key()
    plates = services.dep.settings.plates
    return EpochOut(
        epoch_id=key.epoch_id,
        starts_at=key.starts_at,
        ends_at=key.ends_at,
        sealed_key=base64.b64encode(seal_to_device(device.public_key, key.key)).decode(),
        fold_confusables=plates.fold_confusables,
        confusables=plates.confusables,
        evidence_public_key=services.evidence_public_key(),
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
