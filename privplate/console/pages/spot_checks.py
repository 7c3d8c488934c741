"""Console screens of the compliance officer: the spot-check queue (searches and hand-made
hotlist entries drawn for review), one item with what its reviewer reads, and its verdict.

The same calls as the API's /compliance/reviews routes (privplate.policy.review): the queue,
the item and the verdict, whose rules (once, never by the requester's person, a note) are the
service's; a refusal is shown in its words. No item shows a plate: the records hold none.
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
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.policy.review import (
    MAX_NOTE,
    DrawReason,
    SubjectKind,
    Verdict,
    list_reviews,
    record_verdict,
    review_item,
)

router = APIRouter(include_in_schema=False)
Officer = Annotated[UserInfo, Depends(console(Role.COMPLIANCE))]

SPOT_CHECKS = "/console/officer/spot-checks"
#: How many items the queue shows (open ones first, the longest waiting on top).
QUEUE_ROWS = 200
VERDICTS = {
    Verdict.CONSISTENT: "Consistent with the purpose given",
    Verdict.NEEDS_FOLLOW_UP: "Needs follow-up",
    Verdict.VIOLATION: "Violation",
}


@router.get(SPOT_CHECKS, response_class=HTMLResponse)
def queue(
    request: Request, _: Officer, show: str = "all", reason: str = "", kind: str = ""
) -> Response:
    """The filters are query parameters (none of them is a plate)."""
    reasons = [r.value for r in DrawReason]
    kinds = [k.value for k in SubjectKind]
    chosen = {
        "show": "open" if show == "open" else "all",
        "reason": reason if reason in reasons else "",
        "kind": kind if kind in kinds else "",
    }
    items = list_reviews(
        db=services_of(request).dep.db,
        open_only=chosen["show"] == "open",
        reason=DrawReason(chosen["reason"]) if chosen["reason"] else None,
        kind=SubjectKind(chosen["kind"]) if chosen["kind"] else None,
        limit=QUEUE_ROWS,
    )
    return page(
        request,
        "officer_spot_checks.html",
        title="Spot checks",
        items=items,
        open_count=sum(1 for i in items if i.reviewed_at is None),
        reasons=reasons,
        kinds=kinds,
        chosen=chosen,
        rows=QUEUE_ROWS,
    )


def _item_page(
    request: Request,
    review_id: uuid.UUID,
    *,
    message: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response:
    item = review_item(db=services_of(request).dep.db, review_id=review_id)
    return page(
        request,
        "officer_spot_check.html",
        title="Spot check",
        item=item,
        review=item.review,
        verdicts=[(v.value, label) for v, label in VERDICTS.items()],
        max_note=MAX_NOTE,
        message=message,
        error=error,
        status_code=status_code,
    )


@router.get(SPOT_CHECKS + "/{review_id}", response_class=HTMLResponse)
def item(request: Request, _: Officer, review_id: uuid.UUID, done: str = "") -> Response:
    message = "Verdict recorded (it is on the audit log)." if done == "recorded" else ""
    return _item_page(request, review_id, message=message)


@router.post(SPOT_CHECKS + "/{review_id}/verdict", response_class=HTMLResponse)
def record(
    request: Request,
    user: Officer,
    review_id: uuid.UUID,
    verdict: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=MAX_NOTE)] = "",
) -> Response:
    dep = services_of(request).dep
    try:
        try:
            chosen = Verdict(verdict)
        except ValueError:
            raise InvalidRequest("choose a verdict") from None
        record_verdict(
            db=dep.db,
            audit=dep.audit,
            review_id=review_id,
            reviewer=user,
            verdict=chosen,
            note=note,
        )
    except PrivplateError as exc:
        return _item_page(request, review_id, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"{SPOT_CHECKS}/{review_id}?done=recorded", status_code=303)
