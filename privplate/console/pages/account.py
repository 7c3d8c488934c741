"""Sign in, sign out, and one's own account (password, active sessions): every role."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from privplate.console.render import home_of, page
from privplate.console.sessions import (
    CONSOLE_PUBLIC,
    COOKIE,
    PRE_COOKIE,
    console,
    cookie_options,
    new_pre_token,
    services_of,
)
from privplate.errors import AuthenticationFailed, PrivplateError
from privplate.identity import accounts
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import USER_ROLES

router = APIRouter(include_in_schema=False)
AnyUser = Annotated[UserInfo, Depends(console(*USER_ROLES))]
Public = Depends(CONSOLE_PUBLIC)


def _address(request: Request) -> str | None:
    # Behind a reverse proxy, uvicorn needs --proxy-headers for this to be the client.
    return request.client.host if request.client is not None else None


def _sign_in_form(request: Request, *, error: str = "", status_code: int = 200) -> Response:
    pre = request.cookies.get(PRE_COOKIE) or new_pre_token()
    request.state.csrf = pre
    answer = page(request, "sign_in.html", title="Sign in", error=error, status_code=status_code)
    answer.set_cookie(PRE_COOKIE, pre, **cookie_options(None))  # type: ignore[arg-type]
    return answer


@router.get("/console/sign-in", dependencies=[Public], response_class=HTMLResponse)
def sign_in_form(request: Request) -> Response:
    return _sign_in_form(request)


@router.post("/console/sign-in", dependencies=[Public], response_class=HTMLResponse)
def sign_in(
    request: Request,
    name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1024)],
) -> Response:
    services = services_of(request)
    try:
        user, token, _expires = accounts.login(
            db=services.dep.db,
            audit=services.dep.audit,
            name=name,
            password=password,
            hours=services.dep.settings.server.session_hours,
            address=_address(request),
            limits=services.sign_in_limits,
        )
    except AuthenticationFailed as exc:
        return _sign_in_form(request, error=str(exc), status_code=401)
    except PrivplateError as exc:  # too many attempts, and the like: say so on the form
        return _sign_in_form(request, error=str(exc), status_code=429)
    answer = RedirectResponse(home_of(user.role), status_code=303)
    answer.set_cookie(
        COOKIE,
        token,
        **cookie_options(services.dep.settings.server.session_hours * 3600),  # type: ignore[arg-type]
    )
    answer.delete_cookie(PRE_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return answer


@router.post("/console/sign-out", response_class=HTMLResponse)
def sign_out(request: Request, user: AnyUser) -> Response:
    services = services_of(request)
    accounts.logout(
        db=services.dep.db, audit=services.dep.audit, user=user, token=request.state.session_token
    )
    answer = RedirectResponse("/console/sign-in", status_code=303)
    answer.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return answer


def _account(
    request: Request, user: UserInfo, *, message: str = "", error: str = "", status_code: int = 200
) -> Response:
    services = services_of(request)
    sessions = accounts.list_sessions(
        db=services.dep.db,
        user=user,
        token=request.state.session_token,
        idle=services.session_idle,
    )
    return page(
        request,
        "account.html",
        title="Your account",
        sessions=sessions,
        message=message,
        error=error,
        status_code=status_code,
    )


@router.get("/console/account", response_class=HTMLResponse)
def account(request: Request, user: AnyUser) -> Response:
    return _account(request, user)


@router.post("/console/account/password", response_class=HTMLResponse)
async def change_password(
    request: Request,
    user: AnyUser,
    current: Annotated[str, Form(max_length=1024)],
    new: Annotated[str, Form(max_length=1024)],
    again: Annotated[str, Form(max_length=1024)],
) -> Response:
    if new != again:
        return _account(request, user, error="the two new passwords differ", status_code=422)
    services = services_of(request)
    try:
        await run_in_threadpool(
            accounts.change_own_password,
            db=services.dep.db,
            audit=services.dep.audit,
            user=user,
            current_password=current,
            new_password=new,
            keep_token=request.state.session_token,
            address=_address(request),
            limits=services.sign_in_limits,
        )
    except PrivplateError as exc:
        return _account(request, user, error=str(exc), status_code=422)
    return _account(request, user, message="Password changed; your other sessions were ended.")


@router.post("/console/account/sessions/{session_id}/end", response_class=HTMLResponse)
def end_session(request: Request, user: AnyUser, session_id: uuid.UUID) -> Response:
    services = services_of(request)
    accounts.revoke_session(
        db=services.dep.db, audit=services.dep.audit, user=user, session_id=session_id
    )
    return RedirectResponse("/console/account", status_code=303)
