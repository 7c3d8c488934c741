"""The one place where privplate errors become HTTP answers.

Every error answers ``{"error": {"type": ..., "message": ...}}``. Validation errors list the
fields and what is wrong with them, never the submitted values (they could hold a plate).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from privplate import errors as e
from privplate.console.errors import error_page, is_console
from privplate.http_status import status_for

log = logging.getLogger("privplate.api")


class ErrorBody(BaseModel):
    type: str = Field(examples=["purpose_denied"])
    message: str = Field(examples=["purpose 'immigration-enforcement' is forbidden ..."])


class ErrorAnswer(BaseModel):
    error: ErrorBody


def _doc(text: str) -> dict[str, Any]:
    return {"model": ErrorAnswer, "description": text}


#: Documented on every route: the shapes of the refusals any route can give.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("Bad input (the message names the problem, never a plate)"),
    401: _doc("Not signed in, or a device request that fails authentication"),
    403: _doc("Role not allowed, or a purpose/policy refusal (recorded)"),
    404: _doc("No such object"),
    409: _doc("Conflicts with stored state"),
    410: _doc("Gone: the epoch key or the evidence was destroyed by retention"),
    413: _doc("Request body too large"),
    422: _doc("Malformed request (fields and reasons, never the values)"),
    429: _doc(
        "Quota used up (compliance officers are notified), or too many failed sign-ins "
        "(Retry-After says when to try again)"
    ),
    503: _doc("Database unavailable; nothing was written, retry"),
}


def _type_name(exc: Exception) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def answer(
    status: int,
    kind: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message}, **(extra or {})},
        status_code=status,
        headers=headers,
    )


def refusal(exc: e.PrivplateError) -> tuple[int, str]:
    """The HTTP status and error type ``exc`` is answered with."""
    return status_for(exc), _type_name(exc)


def install(app: FastAPI) -> None:
    # Console pages get the same errors as pages (the sign-in form, or a plain error page).
    @app.exception_handler(e.PrivplateError)
    async def _privplate(request: Request, exc: e.PrivplateError) -> Response:
        status, kind = refusal(exc)
        if status >= 500:
            log.error("request failed: %s", exc)
        if is_console(request):
            return error_page(request, status, str(exc))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, e.TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after)}
        if isinstance(exc, e.NotReady):
            headers = {"Retry-After": "2"}  # the server tries again about this often
        return answer(status, kind, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # Where and what only, never the input: a field's value may be a plate.
        problems = []
        for err in exc.errors()[:20]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        message = "; ".join(problems) or "the request is malformed"
        if is_console(request):
            return error_page(request, 422, message)
        return answer(422, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if is_console(request):
            return error_page(request, exc.status_code, str(exc.detail))
        return answer(exc.status_code, "http_error", str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # The type only: an unexpected exception's text could carry request data.
        log.error("unexpected %s while handling a request", type(exc).__name__)
        if is_console(request):
            return error_page(request, 500, "the server failed; the error was logged")
        return answer(500, "internal_error", "the server failed; the error was logged")
