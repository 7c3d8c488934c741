"""The public transparency report (no sign-in): policy, access and the period's totals."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from privplate.api.deps import Public, ServicesDep
from privplate.transparency import build_report, period_ending
from privplate.transparency.markdown import render_markdown

router = APIRouter(tags=["transparency"])
#: A public page must not let anyone make the server re-read the audit log at will.
CACHE_SECONDS = 300.0
_lock = threading.Lock()
Days = Annotated[int, Query(ge=7, le=366, description="Length of the period ending now.")]


def _report(request: Request, services: ServicesDep, days: int) -> dict[str, Any]:
    # One cache per app (per deployment); built under the lock so a burst builds it once.
    with _lock:
        cache: dict[int, tuple[float, dict[str, Any]]] = getattr(
            request.app.state, "transparency_cache", {}
        )
        request.app.state.transparency_cache = cache
        hit = cache.get(days)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        start, end = period_ending(datetime.now(UTC), days)
        report = build_report(services.dep, start=start, end=end)
        cache[days] = (time.monotonic(), report)
        return report


@router.get(
    "/transparency",
    summary="Transparency report (JSON)",
    dependencies=[Public],
    response_model=None,
    responses={200: {"content": {"application/json": {}}}},
)
def transparency(request: Request, services: ServicesDep, days: Days = 30) -> JSONResponse:
    return JSONResponse(_report(request, services, days))


@router.get(
    "/transparency.md",
    summary="Transparency report (Markdown)",
    dependencies=[Public],
    response_model=None,
    responses={200: {"content": {"text/markdown": {}}}},
)
def transparency_markdown(
    request: Request, services: ServicesDep, days: Days = 30
) -> PlainTextResponse:
    text = render_markdown(_report(request, services, days))
    return PlainTextResponse(text, media_type="text/markdown")
