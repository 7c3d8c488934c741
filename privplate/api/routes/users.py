"""User accounts and API keys (administrators)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, Field

from privplate.api.deps import ServicesDep, allow
from privplate.api.routes.sessions import UserOut
from privplate.identity import accounts
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role

router = APIRouter(tags=["users"])
Admin = Annotated[UserInfo, Depends(allow(Role.ADMIN))]
UserName = Annotated[str, Path(min_length=1, max_length=100, examples=["dana"])]


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["dana"])
    role: Role = Field(examples=[Role.INVESTIGATOR])
    password: str | None = Field(
        default=None, min_length=12, max_length=1024, description="Omit for service accounts."
    )
    agency: str = Field(default="", max_length=200, examples=["Springfield PD"])
    person: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        examples=["dana"],
        description="Another account of an existing person: that person's id (the name of "
        "their first account). Omit for someone new.",
    )


class PasswordIn(BaseModel):
    password: str = Field(min_length=12, max_length=1024)


class ApiKeyIn(BaseModel):
    label: str = Field(default="", max_length=200, examples=["prometheus scraper"])


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    key: str = Field(description="Shown once; send as Authorization: Bearer <key>.")


@router.get("/users", summary="List users", response_model=list[UserOut])
def list_users(_: Admin, services: ServicesDep) -> list[UserOut]:
    return [UserOut.of(u) for u in accounts.list_users(db=services.dep.db)]


@router.post("/users", summary="Create a user", status_code=201, response_model=UserOut)
def create_user(body: UserIn, admin: Admin, services: ServicesDep) -> UserOut:
    user = accounts.create_user(
        db=services.dep.db,
        audit=services.dep.audit,
        actor=admin.actor,
        name=body.name,
        role=body.role,
        password=body.password,
        agency=body.agency,
        person=body.person,
    )
    return UserOut.of(user)


@router.post("/users/{name}/disable", summary="Disable a user", response_model=UserOut)
def disable_user(name: UserName, admin: Admin, services: ServicesDep) -> UserOut:
    return UserOut.of(
        accounts.disable_user(
            db=services.dep.db, audit=services.dep.audit, actor=admin.actor, name=name
        )
    )


@router.put("/users/{name}/password", summary="Set a user's password", status_code=204)
def set_password(name: UserName, body: PasswordIn, admin: Admin, services: ServicesDep) -> Response:
    accounts.set_password(
        db=services.dep.db,
        audit=services.dep.audit,
        actor=admin.actor,
        name=name,
        password=body.password,
    )
    return Response(status_code=204)


@router.post(
    "/users/{name}/api-keys",
    summary="Create an API key for a (service) account",
    status_code=201,
    response_model=ApiKeyOut,
)
def create_api_key(
    name: UserName, body: ApiKeyIn, admin: Admin, services: ServicesDep
) -> ApiKeyOut:
    key_id, key = accounts.create_api_key(
        db=services.dep.db, audit=services.dep.audit, actor=admin.actor, name=name, label=body.label
    )
    return ApiKeyOut(id=key_id, key=key)


@router.delete("/api-keys/{key_id}", summary="Revoke an API key", status_code=204)
def revoke_api_key(key_id: uuid.UUID, admin: Admin, services: ServicesDep) -> Response:
    accounts.revoke_api_key(
        db=services.dep.db, audit=services.dep.audit, actor=admin.actor, key_id=key_id
    )
    return Response(status_code=204)
