"""Console screen of the compliance officer: searches that wait for a second person, with
approve (an optional note) and deny (a note required).

The same calls as the API's /search-approvals routes (services.search_approvals): its rules
(a compliance officer who is not the requester's person, pending only, in time) are the
service's, and a refusal is shown in its words. A pending search's plate stays sealed on the
server: nothing here can show it, and the approver decides on purpose, case, justification,
window and requester.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from privplate.console.pages.refusal import status_of
from privplate.console.render import page
from privplate.console.sessions import console, services_of
from privplate.errors import PrivplateError
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.store.approval_models import ApprovalStatus

router = APIRouter(include_in_schema=False)
Officer = Annotated[UserInfo, Depends(console(Role.COMPLIANCE))]

APPROVALS = "/console/officer/approvals"
DONE = {
    "approved": "Search approved: its requester may now run it, once.",
    "denied": "Search denied; its encrypted plate is deleted and the requester sees your note.",
}


def _queue_page(
    request: Request,
    user: UserInfo,
    *,
    status: str = ApprovalStatus.PENDING.value,
    message: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    statuses = [s.value for s in ApprovalStatus]
    chosen = status if status in statuses else ""
    found = services_of(request).search_approvals.queue(
        user, status=ApprovalStatus(chosen) if chosen else None
    )
    return page(
        request,
        "officer_approvals.html",
        title="Search approvals",
        requests=found,
        statuses=statuses,
        chosen=chosen,
        message=message,
        error=error,
        status_code=status_code,
    )


@router.get(APPROVALS, response_class=HTMLResponse)
def approvals(
    request: Request, user: Officer, status: str = ApprovalStatus.PENDING.value, done: str = ""
) -> Response:
    return _queue_page(request, user, status=status, message=DONE.get(done, ""))


@router.post(APPROVALS + "/{approval_id}/approve", response_class=HTMLResponse)
def approve(
    request: Request,
    user: Officer,
    approval_id: uuid.UUID,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return _decide(
        request,
        user,
        "approved",
        lambda: services_of(request).search_approvals.approve(user, approval_id, note=note),
    )


@router.post(APPROVALS + "/{approval_id}/deny", response_class=HTMLResponse)
def deny(
    request: Request,
    user: Officer,
    approval_id: uuid.UUID,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """A missing note is the service's refusal too (deny requires one), shown in its words."""
    return _decide(
        request,
        user,
        "denied",
        lambda: services_of(request).search_approvals.deny(user, approval_id, note=note),
    )


def _decide(
    request: Request, user: UserInfo, done: str, decision: Callable[[], object]
) -> Response:
    """An officer's decision, through the service; a refusal is shown on the queue in the
    service's words, a decision answered by a redirect back to it."""
    try:
        decision()
    except PrivplateError as exc:
        return _queue_page(request, user, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"{APPROVALS}?done={done}", status_code=303)
