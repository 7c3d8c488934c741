"""Mounts the console on the API's FastAPI app: its pages, its static files, its headers."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.formparsers import MultiPartParser

from privplate.console.limits import MAX_CONSOLE_BODY, ConsoleBodyLimit
from privplate.console.pages import ROUTERS
from privplate.console.render import home_of
from privplate.console.security import SecurityHeaders
from privplate.console.sessions import CONSOLE_PUBLIC, COOKIE, services_of
from privplate.identity.accounts import user_for_bearer

STATIC = Path(__file__).parent / "static"
entry = APIRouter(include_in_schema=False)


@entry.get("/", dependencies=[Depends(CONSOLE_PUBLIC)])
@entry.get("/console", dependencies=[Depends(CONSOLE_PUBLIC)])
@entry.get("/console/", dependencies=[Depends(CONSOLE_PUBLIC)])
async def start(request: Request) -> RedirectResponse:
    """Signed in: the role's dashboard; otherwise the sign-in page (which links the public
    report)."""
    token = request.cookies.get(COOKIE, "")
    user = None
    if token:
        services = services_of(request)
        user = await run_in_threadpool(
            user_for_bearer, db=services.dep.db, secret=token, idle=services.session_idle
        )
    target = home_of(user.role) if user is not None else "/console/sign-in"
    return RedirectResponse(target, status_code=303)


#: Starlette spools an upload larger than this to a temporary file; a hotlist CSV holds plates,
#: so it stays in memory: the console's body limit (ConsoleBodyLimit) refuses any request
#: larger than this before it is read.
UPLOAD_IN_MEMORY_BYTES = 16 * 1024 * 1024


def mount(app: FastAPI) -> None:
    if MAX_CONSOLE_BODY >= UPLOAD_IN_MEMORY_BYTES:
        raise RuntimeError("a console upload could be spooled to disk: raise the spool size")
    MultiPartParser.spool_max_size = UPLOAD_IN_MEMORY_BYTES
    app.include_router(entry)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    # Added first, so it runs inside SecurityHeaders: its 413 page gets the headers too.
    app.add_middleware(ConsoleBodyLimit)
    app.add_middleware(SecurityHeaders)
