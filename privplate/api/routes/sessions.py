"""Sign-in and sign-out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from privplate.api.deps import Public, ServicesDep, allow
from privplate.identity import accounts
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import USER_ROLES, Role

router = APIRouter(tags=["sessions"])
_bearer = HTTPBearer(auto_error=False)
AnyUser = Annotated[UserInfo, Depends(allow(*USER_ROLES))]


class UserOut(BaseModel):
    id: uuid.UUID
    name: str = Field(examples=["dana"])
    role: Role
    agency: str = Field(examples=["Springfield PD"])
    person: str = Field(
        examples=["dana"], description="The person the account belongs to (their first account)."
    )
    created_at: datetime
    disabled: bool

    @classmethod
    def of(cls, user: UserInfo) -> UserOut:
        return cls(
            id=user.id,
            name=user.name,
            role=user.role,
            agency=user.agency,
            person=user.person,
            created_at=user.created_at,
            disabled=user.disabled,
        )


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["dana"])
    password: str = Field(min_length=1, max_length=1024, examples=["a long passphrase"])


class SessionOut(BaseModel):
    token: str = Field(description="Send as Authorization: Bearer <token>.")
    expires_at: datetime
    user: UserOut


@router.post(
    "/sessions",
    summary="Sign in with a user name and password",
    dependencies=[Public],
    status_code=201,
    response_model=SessionOut,
)
def login(body: LoginIn, services: ServicesDep) -> SessionOut:
    """Unknown user, wrong password and disabled account answer alike, in about the same
    time."""
    user, token, expires = accounts.login(
        db=services.dep.db,
        audit=services.dep.audit,
        name=body.name,
        password=body.password,
        hours=services.dep.settings.server.session_hours,
    )
    return SessionOut(token=token, expires_at=expires, user=UserOut.of(user))


@router.delete("/sessions/current", summary="Sign out (end this session)", status_code=204)
def logout(
    user: AnyUser,
    services: ServicesDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    del request
    if credentials is not None:
        accounts.logout(
            db=services.dep.db, audit=services.dep.audit, user=user, token=credentials.credentials
        )
    return Response(status_code=204)


@router.get("/me", summary="Who am I", response_model=UserOut)
def me(user: AnyUser) -> UserOut:
    return UserOut.of(user)
