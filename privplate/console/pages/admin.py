"""Console screens of the administrator: users and API keys, webhooks, sharing agreements, and
a read-only view of the effective policy.

Each action calls the service function its API route calls (privplate/api/routes/users.py,
webhooks.py, sharing.py), so the console adds no rule of its own. A refusal re-renders the
screen with the service's words; a secret (API key, webhook key) is shown once, on the page that
answers the POST that made it, never in a URL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from privplate.console.pages.refusal import status_of
from privplate.console.policy_view import policy_view
from privplate.console.render import page
from privplate.console.sessions import console, services_of
from privplate.errors import (
    InvalidRequest,
    PrivplateError,
)
from privplate.identity import accounts
from privplate.identity.accounts import UserInfo
from privplate.identity.api_keys import list_api_keys
from privplate.identity.roles import USER_ROLES, Role
from privplate.jurisdiction import Purpose
from privplate.policy import sharing

router = APIRouter(include_in_schema=False)
Admin = Annotated[UserInfo, Depends(console(Role.ADMIN))]
Field200 = Annotated[str, Form(max_length=200)]


# -- users and API keys ------------------------------------------------------------------------


def _users(
    request: Request,
    *,
    message: str = "",
    error: str = "",
    status_code: int = 200,
    form: dict[str, Any] | None = None,
) -> Response:
    services = services_of(request)
    return page(
        request,
        "admin_users.html",
        title="Users and API keys",
        users=accounts.list_users(db=services.dep.db),
        keys=list_api_keys(db=services.dep.db),
        roles=[r.value for r in USER_ROLES],
        message=message,
        error=error,
        form=form or {},
        status_code=status_code,
    )


@router.get("/console/admin/users", response_class=HTMLResponse)
def users(request: Request, _admin: Admin) -> Response:
    return _users(request)


@router.post("/console/admin/users", response_class=HTMLResponse)
async def add_user(
    request: Request,
    admin: Admin,
    name: Annotated[str, Form(max_length=100)],
    role: Annotated[str, Form(max_length=20)],
    agency: Field200 = "",
    person: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    services = services_of(request)
    form = {"name": name, "role": role, "agency": agency, "person": person}
    try:
        if role not in {r.value for r in USER_ROLES}:
            raise InvalidRequest(f"role must be one of {', '.join(USER_ROLES)}")
        # Argon2id hashing takes a moment: off the event loop.
        created = await run_in_threadpool(
            accounts.create_user,
            db=services.dep.db,
            audit=services.dep.audit,
            actor=admin.actor,
            name=name.strip(),
            role=Role(role),
            password=password or None,
            agency=agency.strip(),
            person=person.strip() or None,
        )
    except PrivplateError as exc:
        return _users(request, error=str(exc), status_code=status_of(exc), form=form)
    kind = "with a password" if password else "as a service account (no password: give it a key)"
    return _users(request, message=f"Added {created.name} ({created.role.value}) {kind}.")


@router.post("/console/admin/users/{name}/disable", response_class=HTMLResponse)
def disable_user(request: Request, admin: Admin, name: str) -> Response:
    services = services_of(request)
    try:
        accounts.disable_user(
            db=services.dep.db, audit=services.dep.audit, actor=admin.actor, name=name
        )
    except PrivplateError as exc:
        return _users(request, error=str(exc), status_code=status_of(exc))
    return _users(
        request, message=f"Disabled {name}: their sessions ended and their API keys were revoked."
    )


@router.post("/console/admin/api-keys", response_class=HTMLResponse)
def create_api_key(
    request: Request,
    admin: Admin,
    name: Annotated[str, Form(max_length=100)],
    label: Field200 = "",
) -> Response:
    services = services_of(request)
    try:
        key_id, key = accounts.create_api_key(
            db=services.dep.db,
            audit=services.dep.audit,
            actor=admin.actor,
            name=name,
            label=label.strip(),
        )
    except PrivplateError as exc:
        return _users(request, error=str(exc), status_code=status_of(exc))
    return page(
        request,
        "admin_secret.html",
        title="New API key",
        what=f"API key for {name}",
        secret=key,
        secret_id=str(key_id),
        usage="Send it as Authorization: Bearer <key>. It is shown only now: privplate keeps "
        "only its hash.",
        back="/console/admin/users",
        back_label="Back to users and API keys",
        status_code=201,
    )


@router.post("/console/admin/api-keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_api_key(request: Request, admin: Admin, key_id: uuid.UUID) -> Response:
    services = services_of(request)
    try:
        accounts.revoke_api_key(
            db=services.dep.db, audit=services.dep.audit, actor=admin.actor, key_id=key_id
        )
    except PrivplateError as exc:
        return _users(request, error=str(exc), status_code=status_of(exc))
    return _users(request, message=f"Revoked API key {key_id}.")


# -- webhooks ----------------------------------------------------------------------------------


def _webhooks(
    request: Request, *, message: str = "", error: str = "", status_code: int = 200, url: str = ""
) -> Response:
    return page(
        request,
        "admin_webhooks.html",
        title="Webhooks",
        hooks=services_of(request).webhooks.all(),
        message=message,
        error=error,
        url=url,
        status_code=status_code,
    )


@router.get("/console/admin/webhooks", response_class=HTMLResponse)
def webhooks(request: Request, _admin: Admin) -> Response:
    return _webhooks(request)


@router.post("/console/admin/webhooks", response_class=HTMLResponse)
def add_webhook(
    request: Request, admin: Admin, url: Annotated[str, Form(max_length=2000)]
) -> Response:
    try:
        info, secret = services_of(request).webhooks.create(actor=admin.actor, url=url.strip())
    except PrivplateError as exc:
        return _webhooks(request, error=str(exc), status_code=status_of(exc), url=url)
    return page(
        request,
        "admin_secret.html",
        title="New webhook",
        what=f"Signing key of the webhook to {info.url}",
        secret=secret,
        secret_id=str(info.id),
        usage="Receivers check X-Privplate-Signature (HMAC-SHA256 over timestamp.body) with "
        "this key. It is shown only now.",
        back="/console/admin/webhooks",
        back_label="Back to webhooks",
        status_code=201,
    )


@router.post("/console/admin/webhooks/{webhook_id}/deactivate", response_class=HTMLResponse)
def deactivate_webhook(request: Request, admin: Admin, webhook_id: uuid.UUID) -> Response:
    try:
        services_of(request).webhooks.deactivate(actor=admin.actor, webhook_id=webhook_id)
    except PrivplateError as exc:
        return _webhooks(request, error=str(exc), status_code=status_of(exc))
    return _webhooks(request, message="Webhook deactivated: no more alerts are sent to it.")


# -- sharing agreements ------------------------------------------------------------------------


def _sharing(
    request: Request,
    *,
    message: str = "",
    error: str = "",
    status_code: int = 200,
    form: dict[str, Any] | None = None,
) -> Response:
    services = services_of(request)
    return page(
        request,
        "admin_sharing.html",
        title="Sharing agreements",
        agreements=sharing.list_agreements(db=services.dep.db),
        purposes=sorted(p.value for p in services.policy.allowed),
        rule=services.policy.out_of_state_sharing,
        message=message,
        error=error,
        form=form or {},
        min_expiry=(datetime.now(UTC).date() + timedelta(days=1)).isoformat(),
        status_code=status_code,
    )


@router.get("/console/admin/sharing", response_class=HTMLResponse)
def agreements(request: Request, _admin: Admin) -> Response:
    return _sharing(request)


@router.post("/console/admin/sharing", response_class=HTMLResponse)
async def create_agreement(
    request: Request,
    admin: Admin,
    agency: Field200,
    document_reference: Annotated[str, Form(max_length=500)],
    expires: Annotated[date, Form()],
    out_of_state: Annotated[bool, Form()] = False,
    declaration_signed: Annotated[bool, Form()] = False,
) -> Response:
    services = services_of(request)
    # Several checkboxes share the name "purposes": read them all from the form.
    chosen = [str(v) for v in (await request.form()).getlist("purposes")]
    form = {
        "agency": agency,
        "document_reference": document_reference,
        "expires": expires.isoformat(),
        "out_of_state": out_of_state,
        "declaration_signed": declaration_signed,
        "purposes": chosen,
    }
    try:
        purposes = []
        for value in chosen:
            try:
                purposes.append(Purpose(value))
            except ValueError:
                raise InvalidRequest("a purpose was not one of this deployment's") from None
        created = sharing.create_agreement(
            db=services.dep.db,
            audit=services.dep.audit,
            actor=admin.actor,
            agency=agency.strip(),
            out_of_state=out_of_state,
            declaration_signed=declaration_signed,
            document_reference=document_reference.strip(),
            purposes=purposes,
            # The end of the day named: an agreement "until 2027-06-30" covers that day.
            expires_at=datetime.combine(expires, time.max, tzinfo=UTC),
            policy=services.policy,
        )
    except PrivplateError as exc:
        return _sharing(request, error=str(exc), status_code=status_of(exc), form=form)
    return _sharing(request, message=f"Recorded the agreement with {created.agency}.")


@router.post("/console/admin/sharing/{agreement_id}/revoke", response_class=HTMLResponse)
def revoke_agreement(request: Request, admin: Admin, agreement_id: uuid.UUID) -> Response:
    services = services_of(request)
    try:
        sharing.revoke_agreement(
            db=services.dep.db,
            audit=services.dep.audit,
            actor=admin.actor,
            agreement_id=agreement_id,
        )
    except PrivplateError as exc:
        return _sharing(request, error=str(exc), status_code=status_of(exc))
    return _sharing(request, message="Agreement revoked: no more searches may be run under it.")


# -- the effective policy ----------------------------------------------------------------------


@router.get("/console/admin/policy", response_class=HTMLResponse)
def policy(request: Request, _admin: Admin) -> Response:
    settings = services_of(request).dep.settings
    return page(
        request,
        "admin_policy.html",
        title="Effective policy",
        view=policy_view(settings),
        show_changes=True,
        purge_interval=settings.retention.purge_interval_seconds,
    )
