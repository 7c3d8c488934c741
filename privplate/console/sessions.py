"""Console sign-in state: the session token in a cookie, a CSRF token bound to it, and the
guards every console route declares.

The cookie holds the same kind of session token the API hands out (``pps_...``), so sessions
are the rows of the existing session table: revocable, idle-timed-out, ended by sign-out or a
password change. The cookie is ``__Host-`` prefixed, HttpOnly, Secure and SameSite=Strict.
Every state-changing console request must carry the CSRF token (an HMAC of the session token
under the server's ``console-csrf`` subkey) and come from this origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from privplate.errors import AuthenticationFailed, PermissionDenied
from privplate.identity.accounts import SESSION_PREFIX, UserInfo, user_for_bearer
from privplate.identity.roles import Role
from privplate.services import Services, services_in

COOKIE = "__Host-privplate"
#: Before sign-in there is no session to bind the CSRF token to: a random value in its own
#: cookie is (double submit), so a forged sign-in post from another site fails too.
PRE_COOKIE = "__Host-privplate-pre"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(AuthenticationFailed):
    """No live console session: the page answers with the sign-in form."""


class ForgedRequest(PermissionDenied):
    """A state-changing request without this session's CSRF token or from another origin."""


def services_of(request: Request) -> Services:
    return services_in(request.app.state)


def csrf_for(services: Services, token: str) -> str:
    key = services.secret.subkey("console-csrf")
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def new_pre_token() -> str:
    return secrets.token_urlsafe(24)


def cookie_options(max_age: int | None) -> dict[str, object]:
    return {
        "max_age": max_age,
        "path": "/",
        "secure": True,
        "httponly": True,
        "samesite": "strict",
    }


def check_origin(request: Request) -> None:
    """Refuse a state-changing request that a browser says came from elsewhere. Browsers send
    Sec-Fetch-Site and Origin on every POST; a client that sends neither still needs the CSRF
    token."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        raise ForgedRequest(f"refused: the request came from another site ({site})")
    origin = request.headers.get("origin")
    if origin is not None:
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own:
            raise ForgedRequest("refused: the request came from another origin")


async def submitted_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette keeps it: the route reads the same form
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request, expected: str) -> None:
    check_origin(request)
    given = await submitted_csrf(request)
    if not given or not hmac.compare_digest(given, expected):
        raise ForgedRequest(
            "refused: this form is stale or was not sent from the console (reload the page and "
            "try again)"
        )


class ConsoleGuard:
    """Lets in a console session whose user has one of ``roles``; checks CSRF and origin on
    every state-changing request. Returns the user; the page gets the CSRF token from
    ``request.state.csrf``."""

    access_guard = True

    def __init__(self, roles: tuple[Role, ...]) -> None:
        if not roles or Role.DEVICE in roles:
            raise ValueError("a console guard names one or more user roles")
        self.roles = frozenset(roles)

    async def __call__(self, request: Request) -> UserInfo:
        services = services_of(request)
        token = request.cookies.get(COOKIE, "")
        user = None
        if token.startswith(SESSION_PREFIX):
            user = await run_in_threadpool(
                user_for_bearer, db=services.dep.db, secret=token, idle=services.session_idle
            )
        if user is None:
            raise SignInRequired("sign in to continue")
        csrf = csrf_for(services, token)
        request.state.user = user
        request.state.csrf = csrf
        request.state.session_token = token
        request.state.actor = user.actor
        if request.method not in SAFE_METHODS:
            await check_csrf(request, csrf)
        if user.role not in self.roles:
            await run_in_threadpool(
                services.dep.audit.record,
                actor=user.actor,
                action="access.denied",
                details={"method": request.method, "path": request.url.path},
            )
            raise PermissionDenied(
                f"your role ({user.role.value}) may not open this page "
                f"(it is for: {', '.join(sorted(r.value for r in self.roles))})"
            )
        return user


class ConsolePublic:
    """A console page anyone may open (sign-in, the public report). A state-changing one (the
    sign-in post) needs the pre-session CSRF cookie and its matching form field."""

    access_guard = True
    roles: frozenset[Role] = frozenset()

    async def __call__(self, request: Request) -> None:
        pre = request.cookies.get(PRE_COOKIE, "")
        request.state.csrf = pre
        if request.method not in SAFE_METHODS:
            if not pre:
                raise ForgedRequest(
                    "refused: the sign-in form is stale (cookies off, or not sent from the "
                    "console); reload the page"
                )
            await check_csrf(request, pre)


def console(*roles: Role) -> ConsoleGuard:
    return ConsoleGuard(roles)


CONSOLE_PUBLIC = ConsolePublic()
