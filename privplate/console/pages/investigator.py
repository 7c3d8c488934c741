"""Console screens: investigator. The search ("was this plate seen"), my searches, my unseal
requests, and a released image shown in the page.

The plate arrives only in the search form's POST body and goes straight into
SearchApprovals.submit (what POST /queries calls: the one search, or, for a purpose in
queries.approval_required, a request filed for a second person's approval): it is never
rendered back, never put in a URL, never logged. What the form shows again after a post comes
from the search's stored record (or the filed request), which never holds the plate (a
justification or case number that contained it is withheld there). An approved request runs
from its own button, whose post carries only its id: the plate stays sealed on the server.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from privplate.console.pages.refusal import status_of
from privplate.console.render import page
from privplate.console.sessions import console, services_of
from privplate.errors import InvalidRequest, PrivplateError
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.approvals import PendingSearch
from privplate.policy.queries import QueryAnswer, QueryRecord, QueryRequest, list_queries
from privplate.services import Services
from privplate.unseal.workflow import RequestStatus

router = APIRouter(include_in_schema=False)
Investigator = Annotated[UserInfo, Depends(console(Role.INVESTIGATOR))]

SEARCH = "/console/investigator/search"
APPROVALS = "/console/investigator/approvals"
UNSEAL = "/console/investigator/unseal"
#: What the browser's datetime-local field sends (minutes, no zone: the form says UTC).
LOCAL_TIME = "%Y-%m-%dT%H:%M"
#: How a stored record marks a justification or case number that contained the plate.
WITHHELD = "(withheld"


def _local(value: datetime) -> str:
    return value.astimezone(UTC).strftime(LOCAL_TIME)


def _form_values(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    purpose: str = "",
    case_number: str = "",
    justification: str = "",
) -> dict[str, str]:
    """What the search form shows: never a plate, so there is no plate field value at all."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return {
        "start": _local(start or now - timedelta(days=7)),
        "end": _local(end or now),
        "purpose": purpose,
        "case_number": "" if case_number.startswith(WITHHELD) else case_number,
        "justification": "" if justification.startswith(WITHHELD) else justification,
    }


def _from_record(record: QueryRecord | PendingSearch | None) -> dict[str, str]:
    if record is None:
        return _form_values()
    return _form_values(
        start=record.window_start,
        end=record.window_end,
        purpose=record.purpose,
        case_number=record.case_number,
        justification=record.justification,
    )


def _latest_record(
    services: Services, user: UserInfo, query_id: uuid.UUID | None = None
) -> QueryRecord | None:
    """This user's search just recorded (by id when it was answered, else their newest)."""
    records = list_queries(db=services.dep.db, user_id=user.id, limit=20)
    if query_id is not None:
        return next((r for r in records if r.id == query_id), None)
    return records[0] if records else None


def _search_page(
    request: Request,
    services: Services,
    *,
    values: dict[str, str],
    error: str = "",
    answer: QueryAnswer | None = None,
    pending: PendingSearch | None = None,
    status_code: int = 200,
) -> Response:
    settings = services.dep.settings.queries
    return page(
        request,
        "investigator_search.html",
        title="Search",
        purposes=sorted(p.value for p in services.policy.allowed),
        max_window_days=settings.max_window_days,
        min_justification=services.policy.min_justification_chars,
        values=values,
        error=error,
        answer=answer,
        pending=pending,
        needs_approval=sorted(p.value for p in settings.approval_required),
        status_code=status_code,
    )


#: Why a search sent as a page navigation is not run (see run_search).
NAVIGATION_REFUSED = (
    "not searched: this browser sent the search as a page, and a browser keeps a page's "
    "form data (the plate) in its history; this form needs JavaScript, which sends it "
    "without a page load"
)


@router.get(SEARCH, response_class=HTMLResponse)
def search_form(request: Request, _: Investigator, sent: str = "") -> Response:
    error = NAVIGATION_REFUSED if sent == "page" else ""
    return _search_page(request, services_of(request), values=_form_values(), error=error)


def _text(form: FormData, name: str, *, limit: int) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"the {name.replace('_', ' ')} is required")
    if len(value) > limit:
        raise InvalidRequest(f"the {name.replace('_', ' ')} is longer than {limit} characters")
    return value


def _utc(form: FormData, name: str) -> datetime:
    try:
        return datetime.strptime(_text(form, name, limit=32), LOCAL_TIME).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidRequest(f"the window {name} is not a date and time") from None


def _purpose(form: FormData) -> Purpose:
    try:
        return Purpose(_text(form, "purpose", limit=64))
    except ValueError:
        raise InvalidRequest("choose a purpose from the list") from None


def _query_request(form: FormData) -> QueryRequest:
    """The search as QueryService.run takes it. Private on purpose: the plate goes from the
    form into the QueryRequest and nowhere else (no public callable here takes a plate)."""
    return QueryRequest(
        plate=_text(form, "plate", limit=32),
        start=_utc(form, "start"),
        end=_utc(form, "end"),
        purpose=_purpose(form),
        case_number=_text(form, "case_number", limit=64),
        justification=_text(form, "justification", limit=2000),
    )


@router.post(SEARCH, response_class=HTMLResponse)
async def run_search(request: Request, user: Investigator) -> Response:
    """The answer is this POST's page (not bookmarkable, no-store), which the page's script
    puts in place of the form page: the reads found, the request filed for approval (its id),
    or the policy's refusal in its own words. The plate is not shown in any."""
    if request.headers.get("sec-fetch-mode") == "navigate":
        # A navigation's POST body stays in the browser's session history (Chromium saves it
        # to re-post on restore): the plate would be on disk. investigator-search.js sends
        # the form with fetch; a page POST is answered with a redirect (which also drops the
        # body from that history entry) and is not run.
        return RedirectResponse(f"{SEARCH}?sent=page", status_code=303)
    services = services_of(request)
    form = await request.form()
    try:
        query = _query_request(form)
    except InvalidRequest as exc:
        # Nothing was recorded; show the form again without anything typed into it (a case
        # number or justification could hold the plate).
        return _search_page(
            request, services, values=_form_values(), error=str(exc), status_code=422
        )
    try:
        answer = await run_in_threadpool(services.search_approvals.submit, user, query)
    except PrivplateError as exc:
        record = await run_in_threadpool(_latest_record, services, user)
        return _search_page(
            request,
            services,
            values=_from_record(record),
            error=str(exc),
            status_code=status_of(exc),
        )
    if isinstance(answer, PendingSearch):
        return _search_page(
            request, services, values=_from_record(answer), pending=answer, status_code=202
        )
    services.counters["queries"] += 1
    record = await run_in_threadpool(_latest_record, services, user, answer.query_id)
    return _search_page(request, services, values=_from_record(record), answer=answer)


def _approvals_page(
    request: Request, user: UserInfo, *, error: str = "", status_code: int = 200
) -> Response:
    services = services_of(request)
    return page(
        request,
        "investigator_approvals.html",
        title="Awaiting approval",
        requests=services.search_approvals.queue(user),
        error=error,
        status_code=status_code,
    )


@router.get(APPROVALS, response_class=HTMLResponse)
def my_approvals(request: Request, user: Investigator) -> Response:
    """My searches filed for approval (the service lists an investigator's own only)."""
    return _approvals_page(request, user)


@router.post(APPROVALS + "/{approval_id}/run", response_class=HTMLResponse)
def run_approved(request: Request, user: Investigator, approval_id: uuid.UUID) -> Response:
    """Run an approved search, once (SearchApprovals.run, as POST /search-approvals/{id}/run):
    the answer is this POST's page, like a search's; its body holds only the CSRF token."""
    services = services_of(request)
    try:
        answer = services.search_approvals.run(user, approval_id)
    except PrivplateError as exc:
        return _approvals_page(request, user, error=str(exc), status_code=status_of(exc))
    services.counters["queries"] += 1
    record = _latest_record(services, user, answer.query_id)
    return _search_page(request, services, values=_from_record(record), answer=answer)


@router.get("/console/investigator/searches", response_class=HTMLResponse)
def my_searches(request: Request, user: Investigator) -> Response:
    services = services_of(request)
    return page(
        request,
        "investigator_searches.html",
        title="My searches",
        searches=list_queries(db=services.dep.db, user_id=user.id),
    )


DONE = {
    "filed": "Unseal request filed. Two compliance officers must approve it before the image "
    "is released to you.",
    "withdrawn": "Request withdrawn.",
}


def _requests_page(
    request: Request, user: UserInfo, *, message: str = "", error: str = "", status_code: int = 200
) -> Response:
    services = services_of(request)
    return page(
        request,
        "investigator_unseal.html",
        title="My unseal requests",
        requests=services.unseal.queue(viewer=user),
        message=message,
        error=error,
        status_code=status_code,
    )


@router.get(UNSEAL, response_class=HTMLResponse)
def my_requests(request: Request, user: Investigator, done: str = "") -> Response:
    return _requests_page(request, user, message=DONE.get(done, ""))


@router.post(UNSEAL, response_class=HTMLResponse)
def file_request(
    request: Request,
    user: Investigator,
    evidence_id: Annotated[uuid.UUID, Form()],
    case_number: Annotated[str, Form(min_length=1, max_length=64)],
    justification: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    services = services_of(request)
    try:
        services.unseal.request(
            user, evidence_id=evidence_id, case_number=case_number, justification=justification
        )
    except PrivplateError as exc:
        return _requests_page(request, user, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"{UNSEAL}?done=filed", status_code=303)


@router.post(UNSEAL + "/{request_id}/withdraw", response_class=HTMLResponse)
def withdraw(request: Request, user: Investigator, request_id: uuid.UUID) -> Response:
    services = services_of(request)
    try:
        services.unseal.withdraw(user, request_id)
    except PrivplateError as exc:
        return _requests_page(request, user, error=str(exc), status_code=status_of(exc))
    return RedirectResponse(f"{UNSEAL}?done=withdrawn", status_code=303)


@router.get(UNSEAL + "/{request_id}/image", response_class=HTMLResponse)
def image_page(request: Request, user: Investigator, request_id: uuid.UUID) -> Response:
    """The released image in the page. Whether it may be fetched is decided by the image
    endpoint (services.unseal.fetch); the page only says when there is nothing to show yet."""
    services = services_of(request)
    info = services.unseal.get(request_id, viewer=user)
    released = info.status == RequestStatus.RELEASED
    return page(
        request,
        "investigator_image.html",
        title="Released image",
        info=info,
        released=released,
        status_code=200 if released else 409,
    )


@router.get(UNSEAL + "/{request_id}/image/{part}.jpg", response_model=None)
def image(
    request: Request,
    user: Investigator,
    request_id: uuid.UUID,
    part: Literal["crop", "frame"],
) -> Response:
    """The watermarked JPEG, exactly as the API's image route gives it (and audited by
    fetch); never stored by the browser."""
    released = services_of(request).unseal.fetch(user, request_id)
    body = released.crop_jpeg if part == "crop" else released.frame_jpeg
    return Response(body, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
