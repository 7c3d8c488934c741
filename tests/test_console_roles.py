"""Every console route against one allow/deny table, called as every role with a real cookie
session (and a valid CSRF token, so that only the role decides)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from privplate.api.app import iter_routes, route_guard
from privplate.console.render import home_of
from privplate.identity.roles import USER_ROLES, Role
from tests.console_support import ConsoleClients, open_console
from tests.test_api_roles import is_console

ADM, OPR, INV, CMP, AUD = (
    Role.ADMIN,
    Role.OPERATOR,
    Role.INVESTIGATOR,
    Role.COMPLIANCE,
    Role.AUDITOR,
)
PUBLIC: frozenset[Role] = frozenset()
EVERY_USER = frozenset(USER_ROLES)

CONSOLE_TABLE: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/console"): PUBLIC,
    ("GET", "/console/"): PUBLIC,
    ("GET", "/console/sign-in"): PUBLIC,
    ("POST", "/console/sign-in"): PUBLIC,
    ("POST", "/console/sign-out"): EVERY_USER,
    ("GET", "/console/account"): EVERY_USER,
    ("POST", "/console/account/password"): EVERY_USER,
    ("POST", "/console/account/sessions/{session_id}/end"): EVERY_USER,
    ("GET", "/console/public/report"): PUBLIC,
    ("GET", "/console/public/policy"): PUBLIC,
    ("GET", "/console/public/checkpoint"): PUBLIC,
    ("GET", "/console/public/checkpoint.json"): PUBLIC,
    ("GET", "/console/operator"): frozenset({OPR}),
    ("GET", "/console/operator/hotlists"): frozenset({OPR}),
    ("POST", "/console/operator/hotlists"): frozenset({OPR}),
    ("GET", "/console/operator/hotlists/{name}"): frozenset({OPR}),
    ("POST", "/console/operator/hotlists/{name}/entries"): frozenset({OPR}),
    ("POST", "/console/operator/hotlists/{name}/entries/{entry_id}/remove"): frozenset({OPR}),
    ("POST", "/console/operator/hotlists/{name}/entries/{entry_id}/reveal"): frozenset({OPR}),
    ("POST", "/console/operator/hotlists/{name}/import"): frozenset({OPR}),
    ("POST", "/console/operator/hotlists/{name}/import/confirm"): frozenset({OPR}),
    ("GET", "/console/operator/alerts"): frozenset({OPR}),
    ("POST", "/console/operator/alerts/{alert_id}/outcome"): frozenset({OPR}),
    ("GET", "/console/operator/alerts/stream"): frozenset({OPR}),
    ("GET", "/console/operator/cameras"): frozenset({OPR}),
    ("POST", "/console/operator/cameras"): frozenset({OPR}),
    ("POST", "/console/operator/devices"): frozenset({OPR}),
    ("POST", "/console/operator/devices/{device_id}/revoke"): frozenset({OPR}),
    ("GET", "/console/investigator/search"): frozenset({INV}),
    ("POST", "/console/investigator/search"): frozenset({INV}),
    ("GET", "/console/investigator/searches"): frozenset({INV}),
    ("GET", "/console/investigator/approvals"): frozenset({INV}),
    ("POST", "/console/investigator/approvals/{approval_id}/run"): frozenset({INV}),
    ("GET", "/console/investigator/unseal"): frozenset({INV}),
    ("POST", "/console/investigator/unseal"): frozenset({INV}),
    ("POST", "/console/investigator/unseal/{request_id}/withdraw"): frozenset({INV}),
    ("GET", "/console/investigator/unseal/{request_id}/image"): frozenset({INV}),
    ("GET", "/console/investigator/unseal/{request_id}/image/{part}.jpg"): frozenset({INV}),
    ("GET", "/console/officer/flags"): frozenset({CMP}),
    ("POST", "/console/officer/flags/{flag_id}/review"): frozenset({CMP}),
    ("GET", "/console/officer/searches"): frozenset({CMP}),
    ("GET", "/console/officer/spot-checks"): frozenset({CMP}),
    ("GET", "/console/officer/spot-checks/{review_id}"): frozenset({CMP}),
    ("POST", "/console/officer/spot-checks/{review_id}/verdict"): frozenset({CMP}),
    ("GET", "/console/officer/approvals"): frozenset({CMP}),
    ("POST", "/console/officer/approvals/{approval_id}/approve"): frozenset({CMP}),
    ("POST", "/console/officer/approvals/{approval_id}/deny"): frozenset({CMP}),
    ("GET", "/console/officer/unseal"): frozenset({CMP}),
    ("GET", "/console/officer/unseal/{request_id}"): frozenset({CMP}),
    ("POST", "/console/officer/unseal/{request_id}/approve"): frozenset({CMP}),
    ("POST", "/console/officer/unseal/{request_id}/deny"): frozenset({CMP}),
    ("GET", "/console/officer/holds"): frozenset({CMP}),
    ("POST", "/console/officer/holds/{hold_id}/approve"): frozenset({CMP}),
    ("POST", "/console/officer/holds/{hold_id}/release"): frozenset({CMP}),
    ("GET", "/console/auditor/audit"): frozenset({AUD, CMP}),
    ("GET", "/console/auditor/audit/{seq}"): frozenset({AUD, CMP}),
    ("GET", "/console/auditor/audit/{seq}/proof.json"): frozenset({AUD, CMP}),
    ("GET", "/console/auditor/verify"): frozenset({AUD, CMP}),
    ("GET", "/console/admin/users"): frozenset({ADM}),
    ("POST", "/console/admin/users"): frozenset({ADM}),
    ("POST", "/console/admin/users/{name}/disable"): frozenset({ADM}),
    ("POST", "/console/admin/api-keys"): frozenset({ADM}),
    ("POST", "/console/admin/api-keys/{key_id}/revoke"): frozenset({ADM}),
    ("GET", "/console/admin/webhooks"): frozenset({ADM}),
    ("POST", "/console/admin/webhooks"): frozenset({ADM}),
    ("POST", "/console/admin/webhooks/{webhook_id}/deactivate"): frozenset({ADM}),
    ("GET", "/console/admin/sharing"): frozenset({ADM}),
    ("POST", "/console/admin/sharing"): frozenset({ADM}),
    ("POST", "/console/admin/sharing/{agreement_id}/revoke"): frozenset({ADM}),
    ("GET", "/console/admin/policy"): frozenset({ADM}),
    ("GET", "/console/operator/enrolment-codes"): frozenset({OPR}),
    ("POST", "/console/operator/enrolment-codes"): frozenset({OPR}),
}
#: The start: a redirect to the role's first screen, or to the sign-in form.
ENTRY = {"/", "/console", "/console/"}
CALLERS: list[Role | None] = [*USER_ROLES, None]


@pytest.fixture
def web(home: Path) -> Iterator[ConsoleClients]:
    yield from open_console(home)


def _console_routes(web: ConsoleClients) -> list[tuple[str, str, APIRoute]]:
    found = []
    for route in iter_routes(web.app_client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route, APIRoute) and is_console(route.path):
            found.extend((m, route.path, route) for m in sorted(route.methods or ()))
    return found


def test_every_console_route_is_in_the_table_with_its_declared_guard(
    web: ConsoleClients,
) -> None:
    routes = _console_routes(web)
    seen = {(m, p) for m, p, _ in routes}
    assert seen == set(CONSOLE_TABLE), (
        f"routes missing from CONSOLE_TABLE: {sorted(seen - set(CONSOLE_TABLE))}; "
        f"stale rows: {sorted(set(CONSOLE_TABLE) - seen)}"
    )
    for method, path, route in routes:
        assert route_guard(route).roles == CONSOLE_TABLE[(method, path)], (method, path)
    # The console is no part of the API's schema.
    assert not any(is_console(p) for p in web.app_client.app.openapi()["paths"])  # type: ignore[attr-defined]


def _concrete(path: str) -> str:
    return re.sub(
        r"\{(\w+)\}", lambda m: str(uuid.uuid4()) if m.group(1).endswith("id") else "x", path
    )


def _refused(answer: object) -> bool:
    status = answer.status_code  # type: ignore[attr-defined]
    location = answer.headers.get("location", "")  # type: ignore[attr-defined]
    return status in (401, 403) or (status == 303 and location == "/console/sign-in")


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.value if c else "anonymous")
def test_console_allow_and_deny_match_the_table(web: ConsoleClients, caller: Role | None) -> None:
    client = web.clients[caller] if caller is not None else web.anonymous()
    csrf = web.csrf[caller] if caller is not None else ""
    wrong = []
    for (method, path), allowed in CONSOLE_TABLE.items():
        if path.endswith("/sign-out") or path.endswith("/stream"):
            continue  # below: signing out would end the session the rest of the loop uses
        url = _concrete(path)
        if method == "GET":
            answer = client.get(url, follow_redirects=False)
        else:
            answer = client.post(url, data={"csrf": csrf}, follow_redirects=False)
        permitted = not allowed or caller in allowed
        if path == "/console/sign-in" and method == "POST":
            continue  # public, but needs its own pre-session token: tests/test_console_security
        if path in ENTRY:
            want = home_of(caller) if caller is not None else "/console/sign-in"
            if answer.headers.get("location") != want:
                wrong.append(f"{method} {path}: to {answer.headers.get('location')}")
            continue
        if permitted == _refused(answer):
            wrong.append(f"{method} {path}: {answer.status_code}")
    assert not wrong, f"as {caller}: " + "; ".join(wrong)


def test_a_console_route_without_a_guard_is_refused_at_startup(home: Path) -> None:
    from fastapi import APIRouter

    from privplate.api import app as app_module
    from privplate.console import pages

    rogue = APIRouter()

    @rogue.get("/console/reads/by-camera/{camera_id}")
    def _by_camera(camera_id: str) -> dict[str, str]:
        return {"camera": camera_id}

    original = pages.ROUTERS
    pages.ROUTERS = (*original, rogue)
    try:
        from privplate.console import app as console_app

        console_app.ROUTERS = pages.ROUTERS  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match="declares 0 access guards"):
            app_module.create_app(home, run_scheduler=False)
    finally:
        pages.ROUTERS = original
        console_app.ROUTERS = original  # type: ignore[attr-defined]
