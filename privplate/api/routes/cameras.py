"""Cameras (operators and administrators)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from privplate.api.deps import ServicesDep, allow
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.store.cameras import CameraInfo, list_cameras

router = APIRouter(tags=["cameras"])
Operator = Annotated[UserInfo, Depends(allow(Role.OPERATOR, Role.ADMIN))]


class CameraIn(BaseModel):
    id: str = Field(min_length=1, max_length=64, examples=["gate-north"])
    name: str = Field(default="", max_length=200, examples=["North gate, inbound"])


class CameraOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    active: bool

    @classmethod
    def of(cls, cam: CameraInfo) -> CameraOut:
        return cls(id=cam.id, name=cam.name, created_at=cam.created_at, active=cam.active)


@router.get("/cameras", summary="List cameras", response_model=list[CameraOut])
def cameras(_: Operator, services: ServicesDep) -> list[CameraOut]:
    return [CameraOut.of(c) for c in list_cameras(db=services.dep.db)]


@router.post("/cameras", summary="Register a camera", status_code=201, response_model=CameraOut)
def add_camera(body: CameraIn, user: Operator, services: ServicesDep) -> CameraOut:
    dep = services.dep
    previous, dep.actor = dep.actor, user.actor
    try:
        return CameraOut.of(dep.add_camera(body.id, body.name))
    finally:
        dep.actor = previous
