"""Sign-in and sign-out, and a user's own sessions and password."""

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


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024, examples=["the old passphrase"])
    new_password: str = Field(min_length=12, max_length=1024, examples=["a new long passphrase"])


class SessionInfoOut(BaseModel):
    id: uuid.UUID = Field(description="Public id of the session (not its token).")
    created_at: datetime
    last_used_at: datetime = Field(description="Updated at most about once a minute.")
    expires_at: datetime
    current: bool = Field(description="The session this request was made with.")


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
def login(body: LoginIn, services: ServicesDep, request: Request) -> SessionOut:
    """Unknown user, wrong password and disabled account answer alike, in about the same
    time. After too many failures for the name or from the client's address, the answer is
    429 with Retry-After, whatever the password."""
    user, token, expires = accounts.login(
        db=services.dep.db,
        audit=services.dep.audit,
        name=body.name,
        password=body.password,
        hours=services.dep.settings.server.session_hours,
        address=_address(request),
        limits=services.sign_in_limits,
    )
    return SessionOut(token=token, expires_at=expires, user=UserOut.of(user))


def _address(request: Request) -> str | None:
    # The peer as the server sees it: behind a reverse proxy, run uvicorn with
    # --proxy-headers and --forwarded-allow-ips so that this is the client, not the proxy.
    return request.client.host if request.client is not None else None


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


@router.get(
    "/me/sessions",
    summary="My live sessions (never their tokens)",
    response_model=list[SessionInfoOut],
)
def my_sessions(
    user: AnyUser,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> list[SessionInfoOut]:
    found = accounts.list_sessions(
        db=services.dep.db,
        user=user,
        token=credentials.credentials if credentials is not None else None,
        idle=services.session_idle,
    )
    return [
        SessionInfoOut(
            id=s.id,
            created_at=s.created_at,
            last_used_at=s.last_used_at,
            expires_at=s.expires_at,
            current=s.current,
        )
        for s in found
    ]


@router.delete("/me/sessions/{session_id}", summary="End one of my sessions", status_code=204)
def revoke_my_session(session_id: uuid.UUID, user: AnyUser, services: ServicesDep) -> Response:
    accounts.revoke_session(
        db=services.dep.db, audit=services.dep.audit, user=user, session_id=session_id
    )
    return Response(status_code=204)


@router.put(
    "/me/password",
    summary="Change my password (ends my other sessions)",
    status_code=204,
)
def change_my_password(
    body: PasswordChangeIn,
    user: AnyUser,
    services: ServicesDep,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """A wrong current password answers 400 and counts as a failed sign-in for the account
    and address (429 with Retry-After at the limit). The session making the request stays."""
    accounts.change_own_password(
        db=services.dep.db,
        audit=services.dep.audit,
        user=user,
        current_password=body.current_password,
        new_password=body.new_password,
        keep_token=credentials.credentials if credentials is not None else None,
        address=_address(request),
        limits=services.sign_in_limits,
    )
    return Response(status_code=204)
