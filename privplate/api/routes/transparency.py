"""The public transparency report (no sign-in): policy, access and the period's totals."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from enum import IntEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from privplate.api.deps import Public, ServicesDep
from privplate.transparency import build_report, period_ending
from privplate.transparency.markdown import render_markdown
from privplate.transparency.signed import report_verifier, sign_report

router = APIRouter(tags=["transparency"])
#: A public page must not let anyone make the server re-read the audit log at will: a few
#: fixed periods, each built at most once per CACHE_SECONDS.
CACHE_SECONDS = 300.0
_state_lock = threading.Lock()


class Period(IntEnum):
    WEEK = 7
    MONTH = 30
    QUARTER = 90
    YEAR = 365


Days = Annotated[
    Period, Query(description="Whole days (UTC), the last one today: 7, 30, 90 or 365.")
]
Signed = Annotated[
    bool,
    Query(
        description="The report as a C2SP signed note by the report key "
        "(/.well-known/privplate/report-key), as `privplate report --out` writes it; "
        "`privplate report verify FILE --key KEY` checks it."
    ),
]


def _report(request: Request, services: ServicesDep, days: Period) -> dict[str, Any]:
    # One cache and lock per app (per deployment); built under the lock so a burst builds once.
    with _state_lock:
        state = request.app.state
        if not hasattr(state, "transparency"):
            state.transparency = (threading.Lock(), {})
        lock, cache = state.transparency
    with lock:
        hit = cache.get(days)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]  # type: ignore[no-any-return]
        start, end = period_ending(datetime.now(UTC).date(), int(days))
        report = build_report(services.dep, start=start, end=end)
        cache[days] = (time.monotonic(), report)
        return report


@router.get(
    "/transparency",
    summary="Transparency report (JSON)",
    dependencies=[Public],
    response_model=None,
    responses={200: {"content": {"application/json": {}, "text/plain": {}}}},
)
def transparency(
    request: Request, services: ServicesDep, days: Days = Period.MONTH, signed: Signed = False
) -> Response:
    report = _report(request, services, days)
    if not signed:
        return JSONResponse(report)
    # The same text `privplate report --json --out` signs (Ed25519 is deterministic, so the
    # cached report gives the same signed bytes until the cache renews).
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    return PlainTextResponse(sign_report(text, services.dep.audit.signer))


@router.get(
    "/transparency.md",
    summary="Transparency report (Markdown)",
    dependencies=[Public],
    response_model=None,
    responses={200: {"content": {"text/markdown": {}}}},
)
def transparency_markdown(
    request: Request, services: ServicesDep, days: Days = Period.MONTH, signed: Signed = False
) -> PlainTextResponse:
    text = render_markdown(_report(request, services, days))
    if signed:
        text = sign_report(text, services.dep.audit.signer)
    return PlainTextResponse(text, media_type="text/markdown")


@router.get(
    "/.well-known/privplate/report-key",
    summary="The transparency report's signing key (name+hash+base64)",
    dependencies=[Public],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def report_key(services: ServicesDep) -> PlainTextResponse:
    vkey = report_verifier(services.dep.audit.signer).vkey()
    return PlainTextResponse(vkey + "\n", headers={"Cache-Control": "public, max-age=86400"})
