"""The operator's enrolment codes: make a one-time code that enrols an edge device for
chosen cameras, and the codes on the record.

Making one calls the service `privplate devices enrol-code` and ``POST
/devices/enrolment-codes`` call (privplate.devices.enrolment.create_code), which checks the
cameras and the validity, stores only a keyed hash and audits the making. The code is shown
once, on the page that answers the POST (never in a URL; every console page is ``no-store``,
see privplate.console.security); the listing names a code by its id, never by the code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from privplate.console.pages.refusal import status_of
from privplate.console.render import page
from privplate.console.sessions import console, services_of
from privplate.devices import enrolment
from privplate.errors import InvalidRequest, PrivplateError
from privplate.identity.accounts import UserInfo
from privplate.identity.roles import Role
from privplate.store.cameras import list_cameras

router = APIRouter(include_in_schema=False)
Operator = Annotated[UserInfo, Depends(console(Role.OPERATOR))]
PATH = "/console/operator/enrolment-codes"


def _codes(
    request: Request,
    *,
    error: str = "",
    status_code: int = 200,
    form: dict[str, Any] | None = None,
) -> Response:
    db = services_of(request).dep.db
    return page(
        request,
        "operator_enrolment_codes.html",
        title="Enrolment codes",
        codes=enrolment.list_codes(db=db),
        now=datetime.now(UTC),
        cameras=[c for c in list_cameras(db=db) if c.active],
        default_minutes=enrolment.DEFAULT_MINUTES,
        max_minutes=enrolment.MAX_MINUTES,
        error=error,
        form=form or {"cameras": [], "name": "", "minutes": str(enrolment.DEFAULT_MINUTES)},
        status_code=status_code,
    )


@router.get(PATH, response_class=HTMLResponse)
def codes(request: Request, _operator: Operator) -> Response:
    return _codes(request)


@router.post(PATH, response_class=HTMLResponse)
def create_code(
    request: Request,
    operator: Operator,
    name: Annotated[str, Form(max_length=200)] = "",
    minutes: Annotated[str, Form(max_length=10)] = "",
    cameras: Annotated[list[str] | None, Form()] = None,
) -> Response:
    services = services_of(request)
    chosen = cameras or []
    form = {"cameras": chosen, "name": name, "minutes": minutes}
    try:
        try:
            valid_for = int(minutes) if minutes.strip() else enrolment.DEFAULT_MINUTES
        except ValueError:
            raise InvalidRequest(
                "how long the code can be used is a whole number of minutes"
            ) from None
        issued = enrolment.create_code(
            db=services.dep.db,
            audit=services.dep.audit,
            secret=services.secret,
            actor=operator.actor,
            cameras=chosen,
            name=name.strip(),
            minutes=valid_for,
        )
    except PrivplateError as exc:
        return _codes(request, error=str(exc), status_code=status_of(exc), form=form)
    return page(
        request,
        "operator_enrolment_code.html",
        title="New enrolment code",
        issued=issued,
        server_key=services.dep.audit.signer.note_verifier.vkey(),
        status_code=201,
    )
