"""Console screens: compliance officer. Flags to review, every search, the unseal queue with
approval in the browser, and legal holds.

An approval is computed in the officer's browser (officer-approve.js opens the share file with
the passphrase there); this page receives only the share index, the partial and its proof, and
hands them to services.unseal.approve exactly as the API's approval route does.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from privplate.console.pages.refusal import status_of
from privplate.console.render import page
from privplate.console.sessions import console, services_of
from privplate.errors import InvalidRequest, PrivplateError
from privplate.identity.accounts import UserInfo, list_users
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.flags import close_flag, list_flags
from privplate.policy.queries import list_queries
from privplate.retention import holds as hold_store
from privplate.store.server_models import QueryOutcome
from privplate.unseal.workflow import RequestStatus

router = APIRouter(include_in_schema=False)
Officer = Annotated[UserInfo, Depends(console(Role.COMPLIANCE))]

FLAGS = "/console/officer/flags"
UNSEAL = "/console/officer/unseal"
HOLDS = "/console/officer/holds"
#: How many recorded searches the review reads before filtering by purpose (the record's
#: list filters by user and outcome itself).
SEARCH_ROWS = 500


# -- flags ----------------------------------------------------------------------------------


def _flags_page(
    request: Request,
    *,
    show_all: bool = False,
    message: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    services = services_of(request)
    return page(
        request,
        "officer_flags.html",
        title="Flags",
        flags=list_flags(db=services.dep.db, open_only=not show_all),
        show_all=show_all,
        message=message,
        error=error,
        status_code=status_code,
    )


@router.get(FLAGS, response_class=HTMLResponse)
def flags(request: Request, _: Officer, show: str = "open", done: str = "") -> Response:
    message = "Flag reviewed and closed." if done == "reviewed" else ""
    return _flags_page(request, show_all=show == "all", message=message)


@router.post(FLAGS + "/{flag_id}/review", response_class=HTMLResponse)
def review_flag(
    request: Request,
    user: Officer,
    flag_id: uuid.UUID,
    resolution: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    dep = services_of(request).dep
    try:
        close_flag(
            db=dep.db, audit=dep.audit, flag_id=flag_id, reviewer=user.actor, resolution=resolution
        )
    except PrivplateError as exc:
        return _flags_page(request, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"{FLAGS}?done=reviewed", status_code=303)


# -- search review --------------------------------------------------------------------------


@router.get("/console/officer/searches", response_class=HTMLResponse)
def searches(
    request: Request, _: Officer, outcome: str = "", purpose: str = "", by: str = ""
) -> Response:
    """Every recorded search (never a plate: the record holds none), filtered by outcome,
    purpose and investigator. The filters are query parameters: none of them is a plate."""
    services = services_of(request)
    investigators = sorted(
        (u for u in list_users(db=services.dep.db) if u.role is Role.INVESTIGATOR),
        key=lambda u: u.name,
    )
    chosen = next((u for u in investigators if u.name == by), None)
    outcomes = [o.value for o in QueryOutcome]
    purposes = sorted(p.value for p in Purpose)
    records = list_queries(
        db=services.dep.db,
        user_id=chosen.id if chosen is not None else None,
        outcome=QueryOutcome(outcome) if outcome in outcomes else None,
        purpose=Purpose(purpose) if purpose in purposes else None,
        limit=SEARCH_ROWS,
    )
    return page(
        request,
        "officer_searches.html",
        title="Search review",
        searches=records,
        investigators=[u.name for u in investigators],
        outcomes=outcomes,
        purposes=purposes,
        chosen={
            "outcome": outcome if outcome in outcomes else "",
            "purpose": purpose if purpose in purposes else "",
            "by": chosen.name if chosen is not None else "",
        },
        rows=SEARCH_ROWS,
    )


# -- unseal ---------------------------------------------------------------------------------


@router.get(UNSEAL, response_class=HTMLResponse)
def unseal_queue(request: Request, user: Officer, status: str = "pending") -> Response:
    statuses = [s.value for s in RequestStatus]
    chosen = status if status in statuses else ""
    return page(
        request,
        "officer_unseal.html",
        title="Unseal requests",
        requests=services_of(request).unseal.queue(viewer=user, status=chosen or None),
        statuses=statuses,
        chosen=chosen,
    )


DONE = {
    "approved": "Your approval was recorded.",
    "denied": "The request was denied; the requester sees your reason.",
}


def _request_page(
    request: Request,
    user: UserInfo,
    request_id: uuid.UUID,
    *,
    message: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    info = services_of(request).unseal.get(request_id, viewer=user)
    return page(
        request,
        "officer_request.html",
        title="Unseal request",
        info=info,
        pending=info.status == RequestStatus.PENDING,
        message=message,
        error=error,
        status_code=status_code,
    )


@router.get(UNSEAL + "/{request_id}", response_class=HTMLResponse)
def unseal_request(
    request: Request, user: Officer, request_id: uuid.UUID, done: str = ""
) -> Response:
    return _request_page(request, user, request_id, message=DONE.get(done, ""))


def _hex(value: str, what: str, size: int) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise InvalidRequest(f"the {what} must be hex") from None
    if len(raw) != size:
        raise InvalidRequest(f"the {what} must be {size} bytes")
    return raw


@router.post(UNSEAL + "/{request_id}/approve", response_class=HTMLResponse)
def approve(
    request: Request,
    user: Officer,
    request_id: uuid.UUID,
    share_index: Annotated[str, Form(max_length=3)] = "",
    partial: Annotated[str, Form(max_length=64)] = "",
    proof: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """The browser's approval: (index, partial, proof) only; the share never comes here."""
    services = services_of(request)
    try:
        if not (share_index and partial and proof):
            raise InvalidRequest(
                "no approval was computed: this page's script opens your share file in the "
                "browser (is JavaScript on?)"
            )
        if not share_index.isdigit() or not 1 <= int(share_index) <= 255:
            raise InvalidRequest("the share index must be a number from 1 to 255")
        services.unseal.approve(
            user,
            request_id,
            share_index=int(share_index),
            partial=_hex(partial, "partial", 32),
            proof=_hex(proof, "proof", 64),
        )
    except PrivplateError as exc:
        return _request_page(request, user, request_id, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"{UNSEAL}/{request_id}?done=approved", status_code=303)


@router.post(UNSEAL + "/{request_id}/deny", response_class=HTMLResponse)
def deny(
    request: Request,
    user: Officer,
    request_id: uuid.UUID,
    why: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    try:
        services_of(request).unseal.deny(user, request_id, why=why)
    except PrivplateError as exc:
        return _request_page(request, user, request_id, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"{UNSEAL}/{request_id}?done=denied", status_code=303)


# -- legal holds ----------------------------------------------------------------------------


def _holds_page(
    request: Request, *, message: str = "", error: str = "", status_code: int = 200
) -> Response:
    holds = hold_store.list_holds(db=services_of(request).dep.db)
    return page(
        request,
        "officer_holds.html",
        title="Legal holds",
        holds=list(reversed(holds)),  # newest first
        message=message,
        error=error,
        status_code=status_code,
    )


HOLD_DONE = {"approved": "Legal hold approved.", "released": "Legal hold released."}


@router.get(HOLDS, response_class=HTMLResponse)
def holds(request: Request, _: Officer, done: str = "") -> Response:
    return _holds_page(request, message=HOLD_DONE.get(done, ""))


@router.post(HOLDS + "/{hold_id}/approve", response_class=HTMLResponse)
def approve_hold(request: Request, user: Officer, hold_id: uuid.UUID) -> Response:
    dep = services_of(request).dep
    try:
        hold_store.approve_hold(db=dep.db, audit=dep.audit, hold_id=hold_id, approved_by=user.actor)
    except PrivplateError as exc:
        return _holds_page(request, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"{HOLDS}?done=approved", status_code=303)


@router.post(HOLDS + "/{hold_id}/release", response_class=HTMLResponse)
def release_hold(request: Request, user: Officer, hold_id: uuid.UUID) -> Response:
    dep = services_of(request).dep
    try:
        hold_store.release_hold(db=dep.db, audit=dep.audit, hold_id=hold_id, released_by=user.actor)
    except PrivplateError as exc:
        return _holds_page(request, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"{HOLDS}?done=released", status_code=303)
