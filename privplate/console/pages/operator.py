"""Console screens of operators: the dashboard, hotlists (entries, CSV import with a preview,
reveal on the record), live alerts (hotlist hits with their outcomes; device alerts, which have
none), cameras and devices.

Every action calls the service function its API route calls (privplate/api/routes/hotlists.py,
alerts.py, cameras.py, devices.py), so a rule lives in one place. Plates arrive only in POST
bodies and leave only in the answer to a reveal (a POST, audited, never cached); listings,
previews and alerts never show one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from privplate.alerts import latest_alert_id
from privplate.alerts.outcomes import AlertOutcome, record_outcome
from privplate.alerts.stream import alert_events
from privplate.console import operator_facts as facts
from privplate.console.flash import flashes
from privplate.console.pages.refusal import status_of
from privplate.console.pending_imports import PendingImports
from privplate.console.render import page
from privplate.console.sessions import console, services_of
from privplate.devices import registry
from privplate.errors import (
    InvalidRequest,
    PrivplateError,
)
from privplate.hotlists import EntryIn, HotlistSource
from privplate.hotlists.csv_import import MAX_IMPORT_BYTES, parse_entries
from privplate.hotlists.preview import ImportPreview, preview_import
from privplate.identity.accounts import UserInfo, list_sessions
from privplate.identity.roles import Role
from privplate.retention.status import retention_status
from privplate.services import Services
from privplate.store.cameras import list_cameras
from privplate.store.server_models import AlertKind

router = APIRouter(include_in_schema=False)
Operator = Annotated[UserInfo, Depends(console(Role.OPERATOR))]
ListName = Annotated[str, Path(min_length=1, max_length=100)]
BASE = "/console/operator"
#: What a redirect after a change says (a closed set: the query string carries only the key).
DONE = {
    "created": "Hotlist created.",
    "added": "Entry added.",
    "removed": "Entry removed.",
    "imported": "Entries imported.",
    "camera": "Camera registered.",
    "device": "Device registered.",
    "revoked": "Device revoked.",
    "outcome": "Outcome recorded.",
}
OUTCOME_LABELS = {
    AlertOutcome.CONFIRMED: "Confirmed",
    AlertOutcome.STOP: "Stop",
    AlertOutcome.ARREST: "Arrest",
    AlertOutcome.MISREAD: "Misread",
    AlertOutcome.ENTRY_NOT_VALID: "Entry not valid",
    AlertOutcome.NOT_LOCATED: "Not located",
}

#: What the alerts page calls a device alert (privplate.alerts.device_alerts): a problem with
#: a camera or its box, with no outcome to report.
KIND_LABELS = {
    AlertKind.SILENT_CAMERA.value: "Silent camera",
    AlertKind.SPOOL_BACKLOG.value: "Spool backlog",
}


def _done(key: str | None) -> str:
    return DONE.get(key or "", "")


def _pending(request: Request) -> PendingImports:
    # Held in the database, so any worker can confirm what another previewed.
    services = services_of(request)
    return PendingImports(services.dep.db, services.secret)


def _redirect(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


# -- dashboard ----------------------------------------------------------------------------------


@router.get(BASE, response_class=HTMLResponse)
def dashboard(request: Request, _: Operator) -> Response:
    dep = services_of(request).dep
    return page(
        request,
        "operator_dashboard.html",
        title="Operator dashboard",
        today=facts.today(dep.db),
        cameras=facts.cameras(dep.db),
        devices=facts.devices(dep.db),
        revoke=False,
        # The same status `privplate status` and GET /retention/status report.
        retention=retention_status(dep),
    )


# -- hotlists -----------------------------------------------------------------------------------


def _hotlists(
    request: Request, *, error: str = "", message: str = "", status_code: int = 200
) -> Response:
    return page(
        request,
        "operator_hotlists.html",
        title="Hotlists",
        hotlists=services_of(request).hotlists.all(),
        sources=list(HotlistSource),
        error=error,
        message=message,
        status_code=status_code,
    )


@router.get(f"{BASE}/hotlists", response_class=HTMLResponse)
def hotlists(
    request: Request, _: Operator, done: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    return _hotlists(request, message=_done(done))


@router.post(f"{BASE}/hotlists", response_class=HTMLResponse)
def create_hotlist(
    request: Request,
    user: Operator,
    name: Annotated[str, Form(max_length=100)],
    source: Annotated[str, Form(max_length=32)],
    description: Annotated[str, Form(max_length=2000)] = "",
    max_entries: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    services = services_of(request)
    try:
        if source not in {s.value for s in HotlistSource}:
            raise InvalidRequest("choose where the hotlist comes from")
        cap = int(max_entries) if max_entries.strip() else None
        created = services.hotlists.create(
            actor=user.actor,
            name=name.strip(),
            source=HotlistSource(source),
            description=description,
            max_entries=cap,
        )
    except ValueError:
        return _hotlists(request, error="the entry cap must be a whole number", status_code=400)
    except PrivplateError as exc:
        return _hotlists(request, error=str(exc), status_code=status_of(exc))
    return _redirect(f"{BASE}/hotlists/{created.name}", "created")


def _hotlist(
    request: Request,
    user: UserInfo,
    name: str,
    *,
    error: str = "",
    message: str = "",
    status_code: int = 200,
    revealed: uuid.UUID | None = None,
) -> Response:
    services = services_of(request)
    info = services.hotlists.get(name)
    entries = services.hotlists.entries(actor=user.actor, hotlist=name, reveal=False)
    # A reveal decrypts the one entry asked for, audited as that entry's viewing.
    plate = (
        services.hotlists.reveal_entry(actor=user.actor, hotlist=name, entry_id=revealed).plate
        if revealed is not None
        else None
    )
    return page(
        request,
        "operator_hotlist.html",
        title=f"Hotlist {info.name}",
        hotlist=info,
        entries=entries,
        revealed=revealed,
        revealed_plate=plate,
        error=error,
        message=message,
        status_code=status_code,
    )


@router.get(f"{BASE}/hotlists/{{name}}", response_class=HTMLResponse)
def hotlist(
    request: Request,
    user: Operator,
    name: ListName,
    done: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    refused = flashes(request).take(request.state.session_token, page=request.url.path)
    return _hotlist(
        request,
        user,
        name,
        message="" if refused else _done(done),
        error=refused,
    )


def _expiry(text: str) -> datetime | None:
    """A date from the form: the entry expires at the end of that day (UTC)."""
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest("the expiry must be a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time(23, 59, 59), UTC)


@router.post(f"{BASE}/hotlists/{{name}}/entries", response_class=HTMLResponse)
def add_entry(
    request: Request,
    user: Operator,
    name: ListName,
    # No Form(max_length=...) here: a too-long field would be refused by validation with an
    # error page of its own, i.e. a page answering this post (see below). The service checks
    # every field; the body limit bounds them all.
    plate: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    case_number: Annotated[str, Form()] = "",
    expires_on: Annotated[str, Form()] = "",
) -> Response:
    """Answered with a redirect whatever happens, a refusal too (its words shown by the page
    it opens, see privplate.console.flash): a page answering this post would leave the post's
    body, the plate, in the browser's session history on disk."""
    services = services_of(request)
    try:
        services.hotlists.add_entries(
            actor=user.actor,
            hotlist=name,
            entries=[EntryIn(plate, reason, case_number, _expiry(expires_on))],
        )
    except PrivplateError as exc:
        page_path = f"{BASE}/hotlists/{name}"
        flashes(request).put(request.state.session_token, page=page_path, text=str(exc))
        return RedirectResponse(page_path, status_code=303)
    return _redirect(f"{BASE}/hotlists/{name}", "added")


@router.post(f"{BASE}/hotlists/{{name}}/entries/{{entry_id}}/remove", response_class=HTMLResponse)
def remove_entry(request: Request, user: Operator, name: ListName, entry_id: uuid.UUID) -> Response:
    try:
        services_of(request).hotlists.remove_entry(
            actor=user.actor, hotlist=name, entry_id=entry_id
        )
    except PrivplateError as exc:
        return _hotlist(request, user, name, error=str(exc), status_code=status_of(exc))
    return _redirect(f"{BASE}/hotlists/{name}", "removed")


@router.post(f"{BASE}/hotlists/{{name}}/entries/{{entry_id}}/reveal", response_class=HTMLResponse)
def reveal_entry(request: Request, user: Operator, name: ListName, entry_id: uuid.UUID) -> Response:
    return _hotlist(request, user, name, revealed=entry_id)


@router.post(f"{BASE}/hotlists/{{name}}/import", response_class=HTMLResponse)
async def preview(
    request: Request,
    user: Operator,
    name: ListName,
    csv_file: Annotated[UploadFile, File()],
) -> Response:
    """Step one of an import: check every row, show the problems, keep the file for the
    confirmation (encrypted in the database, see privplate.console.pending_imports)."""
    services = services_of(request)
    raw = await csv_file.read(MAX_IMPORT_BYTES + 1)
    text, file_problem = "", ""
    result: ImportPreview | None = None
    if len(raw) > MAX_IMPORT_BYTES:
        file_problem = f"the CSV is larger than {MAX_IMPORT_BYTES} bytes; split it"
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            file_problem = "the file is not UTF-8 text (save the CSV as UTF-8 and upload it again)"
    if not file_problem:
        try:
            result = await run_in_threadpool(
                preview_import, services.hotlists, actor=user.actor, hotlist=name, text=text
            )
        except PrivplateError as exc:
            return _hotlist(request, user, name, error=str(exc), status_code=status_of(exc))
    key = ""
    if result is not None and result.importable:
        key = await run_in_threadpool(  # a database write: off the event loop
            _pending(request).put,
            session_token=request.state.session_token,
            hotlist=name,
            text=text,
        )
    problem = file_problem or (result.file_problem if result is not None else "")
    return page(
        request,
        "operator_import_preview.html",
        title=f"Import into {name}: preview",
        hotlist=name,
        preview=result,
        file_problem=problem,
        key=key,
        status_code=200 if key else 422,
    )


@router.post(f"{BASE}/hotlists/{{name}}/import/confirm", response_class=HTMLResponse)
def confirm_import(
    request: Request,
    user: Operator,
    name: ListName,
    pending: Annotated[str, Form(max_length=64)],
) -> Response:
    """Step two: the API's import (parse_entries, then add_entries, all or nothing)."""
    services = services_of(request)
    text = _pending(request).take(
        session_token=request.state.session_token, hotlist=name, key=pending
    )
    if text is None:
        return _hotlist(
            request,
            user,
            name,
            error="this preview has expired or was already used; upload the file again",
            status_code=409,
        )
    try:
        services.hotlists.add_entries(actor=user.actor, hotlist=name, entries=parse_entries(text))
    except PrivplateError as exc:
        return _hotlist(request, user, name, error=str(exc), status_code=status_of(exc))
    return _redirect(f"{BASE}/hotlists/{name}", "imported")


# -- alerts -------------------------------------------------------------------------------------


@router.get(f"{BASE}/alerts", response_class=HTMLResponse)
def alerts(
    request: Request, _: Operator, done: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    recent, latest = facts.recent_alerts(services_of(request).dep.db)
    return page(
        request,
        "operator_alerts.html",
        title="Live alerts",
        alerts=recent,
        latest=latest,
        outcomes=OUTCOME_LABELS,
        kinds=KIND_LABELS,
        hotlist_hit=AlertKind.HOTLIST_HIT.value,
        message=_done(done),
    )


@router.post(f"{BASE}/alerts/{{alert_id}}/outcome", response_class=HTMLResponse)
def set_outcome(
    request: Request,
    user: Operator,
    alert_id: Annotated[int, Path(ge=1, le=2**62)],
    outcome: Annotated[AlertOutcome, Form()],
) -> Response:
    dep = services_of(request).dep
    record_outcome(db=dep.db, audit=dep.audit, actor=user.actor, alert_id=alert_id, outcome=outcome)
    return _redirect(f"{BASE}/alerts", "outcome")


@router.get(f"{BASE}/alerts/stream", response_model=None)
async def alert_stream(
    request: Request,
    user: Operator,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """The alerts after the page's newest as Server-Sent Events: the API's stream (the same
    broker wakes it, the same records feed it), behind the console's cookie. A reconnect's
    Last-Event-ID wins over the page's ``after``."""
    services = services_of(request)
    if last_event_id is not None and last_event_id.isdigit():
        cursor = int(last_event_id)
    elif after is not None:
        cursor = after
    else:
        cursor = await run_in_threadpool(latest_alert_id, db=services.dep.db)
    token = request.state.session_token
    return StreamingResponse(
        alert_events(
            db=services.dep.db,
            broker=services.broker,
            cursor=cursor,
            disconnected=request.is_disconnected,
            still_allowed=lambda: _session_live(services, user, token),
            payload=lambda alert: alert.payload(),
        ),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )


def _session_live(services: Services, user: UserInfo, token: str) -> bool:
    """Whether the stream's session is still live: not signed out, ended from another session,
    ended by a password change or by disabling the user, expired or idle too long. Read only
    (accounts.list_sessions), so an open stream does not keep an unattended session alive."""
    sessions = list_sessions(db=services.dep.db, user=user, token=token, idle=services.session_idle)
    return any(s.current for s in sessions)


# -- cameras and devices ------------------------------------------------------------------------


def _cameras(
    request: Request, *, error: str = "", message: str = "", status_code: int = 200
) -> Response:
    db = services_of(request).dep.db
    return page(
        request,
        "operator_cameras.html",
        title="Cameras and devices",
        cameras=facts.cameras(db),
        devices=facts.devices(db),
        revoke=True,
        active=[c for c in list_cameras(db=db) if c.active],
        error=error,
        message=message,
        status_code=status_code,
    )


@router.get(f"{BASE}/cameras", response_class=HTMLResponse)
def cameras(
    request: Request, _: Operator, done: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    return _cameras(request, message=_done(done))


@router.post(f"{BASE}/cameras", response_class=HTMLResponse)
def add_camera(
    request: Request,
    user: Operator,
    camera_id: Annotated[str, Form(max_length=64)],
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    dep = services_of(request).dep
    # As POST /cameras does: the registration is audited under the operator's name.
    previous, dep.actor = dep.actor, user.actor
    try:
        dep.add_camera(camera_id.strip(), name.strip())
    except PrivplateError as exc:
        return _cameras(request, error=str(exc), status_code=status_of(exc))
    finally:
        dep.actor = previous
    return _redirect(f"{BASE}/cameras", "camera")


@router.post(f"{BASE}/devices", response_class=HTMLResponse)
def add_device(
    request: Request,
    user: Operator,
    device_id: Annotated[str, Form(max_length=64)],
    public_key: Annotated[str, Form(max_length=64)],
    name: Annotated[str, Form(max_length=200)] = "",
    cameras: Annotated[list[str] | None, Form()] = None,
) -> Response:
    dep = services_of(request).dep
    try:
        try:
            key = bytes.fromhex(public_key.strip())
        except ValueError:
            raise InvalidRequest("the public key must be 64 hex digits") from None
        registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor=user.actor,
            device_id=device_id.strip(),
            public_key=key,
            cameras=cameras or [],
            name=name.strip(),
        )
    except PrivplateError as exc:
        return _cameras(request, error=str(exc), status_code=status_of(exc))
    return _redirect(f"{BASE}/cameras", "device")


@router.post(f"{BASE}/devices/{{device_id}}/revoke", response_class=HTMLResponse)
def revoke_device(
    request: Request, user: Operator, device_id: Annotated[str, Path(max_length=64)]
) -> Response:
    dep = services_of(request).dep
    try:
        registry.revoke_device(db=dep.db, audit=dep.audit, actor=user.actor, device_id=device_id)
    except PrivplateError as exc:
        return _cameras(request, error=str(exc), status_code=status_of(exc))
    return _redirect(f"{BASE}/cameras", "revoked")
