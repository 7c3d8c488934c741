"""Errors on console pages answer as pages: the sign-in form when signed out, a plain page
naming the problem otherwise (messages never hold a plate: the service layer's never do)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from privplate.console.render import page
from privplate.console.sessions import SignInRequired

SIGN_IN = "/console/sign-in"


def is_console(request: Request) -> bool:
    return request.url.path.startswith("/console")


def error_page(request: Request, status: int, message: str) -> Response:
    if status == 401 or isinstance(getattr(request.state, "error", None), SignInRequired):
        return RedirectResponse(SIGN_IN, status_code=303)
    titles = {
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Too large",
        422: "Check the form",
        429: "Too many requests",
    }
    return page(
        request,
        "error.html",
        status_code=status,
        title=titles.get(status, "Something went wrong" if status >= 500 else "Refused"),
        message=message,
        status=status,
    )
