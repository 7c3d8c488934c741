"""Every route of the app against one allow/deny table, called as every role.

A new route without a declared guard fails at app creation; a route missing from TABLE, or
whose guard differs from it, fails here.
"""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import APIRoute

from privplate.api.app import iter_routes, route_guard
from privplate.identity.roles import USER_ROLES, Role
from tests.api_support import Api

ADM, OPR, INV, CMP, AUD, DEV = (
    Role.ADMIN,
    Role.OPERATOR,
    Role.INVESTIGATOR,
    Role.COMPLIANCE,
    Role.AUDITOR,
    Role.DEVICE,
)
PUBLIC: frozenset[Role] = frozenset()
EVERY_USER = frozenset(USER_ROLES)

TABLE: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/transparency"): PUBLIC,
    ("GET", "/transparency.md"): PUBLIC,
    ("GET", "/.well-known/privplate/report-key"): PUBLIC,
    ("GET", "/.well-known/privplate/checkpoint"): PUBLIC,
    ("GET", "/.well-known/privplate/audit-key"): PUBLIC,
    ("GET", "/.well-known/privplate/consistency"): PUBLIC,
    ("GET", "/.well-known/privplate/inclusion"): PUBLIC,
    ("POST", "/sessions"): PUBLIC,
    ("DELETE", "/sessions/current"): EVERY_USER,
    ("GET", "/me"): EVERY_USER,
    ("GET", "/me/sessions"): EVERY_USER,
    ("DELETE", "/me/sessions/{session_id}"): EVERY_USER,
    ("PUT", "/me/password"): EVERY_USER,
    ("GET", "/users"): frozenset({ADM}),
    ("POST", "/users"): frozenset({ADM}),
    ("POST", "/users/{name}/disable"): frozenset({ADM}),
    ("PUT", "/users/{name}/password"): frozenset({ADM}),
    ("POST", "/users/{name}/api-keys"): frozenset({ADM}),
    ("DELETE", "/api-keys/{key_id}"): frozenset({ADM}),
    ("GET", "/cameras"): frozenset({OPR, ADM}),
    ("POST", "/cameras"): frozenset({OPR, ADM}),
    ("GET", "/devices"): frozenset({OPR, ADM}),
    ("POST", "/devices"): frozenset({OPR, ADM}),
    ("POST", "/devices/{device_id}/revoke"): frozenset({OPR, ADM}),
    ("POST", "/devices/enrolment-codes"): frozenset({OPR, ADM}),
    ("POST", "/devices/enrol"): PUBLIC,
    ("GET", "/device/epoch"): frozenset({DEV}),
    ("GET", "/device/hotlist-tokens"): frozenset({DEV}),
    ("POST", "/ingest"): frozenset({DEV}),
    ("POST", "/devices/health"): frozenset({DEV}),
    ("GET", "/hotlists"): frozenset({OPR}),
    ("POST", "/hotlists"): frozenset({OPR}),
    ("GET", "/hotlists/{name}"): frozenset({OPR}),
    ("GET", "/hotlists/{name}/entries"): frozenset({OPR}),
    ("POST", "/hotlists/{name}/entries"): frozenset({OPR}),
    ("POST", "/hotlists/{name}/import"): frozenset({OPR}),
    ("DELETE", "/hotlists/{name}/entries/{entry_id}"): frozenset({OPR}),
    ("GET", "/alerts"): frozenset({OPR, INV, CMP}),
    ("GET", "/alerts/stream"): frozenset({OPR, INV, CMP}),
    ("POST", "/alerts/{alert_id}/outcome"): frozenset({OPR, INV}),
    ("GET", "/webhooks"): frozenset({ADM}),
    ("POST", "/webhooks"): frozenset({ADM}),
    ("POST", "/webhooks/{webhook_id}/deactivate"): frozenset({ADM}),
    ("GET", "/webhooks/{webhook_id}/deliveries"): frozenset({ADM}),
    ("POST", "/queries"): frozenset({INV}),
    ("GET", "/queries/mine"): frozenset({INV}),
    ("GET", "/search-approvals"): frozenset({INV, CMP, AUD}),
    ("GET", "/search-approvals/{approval_id}"): frozenset({INV, CMP, AUD}),
    ("POST", "/search-approvals/{approval_id}/approve"): frozenset({CMP}),
    ("POST", "/search-approvals/{approval_id}/deny"): frozenset({CMP}),
    ("POST", "/search-approvals/{approval_id}/run"): frozenset({INV}),
    ("GET", "/compliance/flags"): frozenset({CMP, AUD}),
    ("POST", "/compliance/flags/{flag_id}/review"): frozenset({CMP}),
    ("GET", "/compliance/queries"): frozenset({CMP, AUD}),
    ("GET", "/compliance/reviews"): frozenset({CMP, AUD}),
    ("GET", "/compliance/reviews/{review_id}"): frozenset({CMP, AUD}),
    ("POST", "/compliance/reviews/{review_id}/verdict"): frozenset({CMP}),
    ("GET", "/sharing-agreements"): frozenset({ADM, CMP, AUD}),
    ("POST", "/sharing-agreements"): frozenset({ADM}),
    ("POST", "/sharing-agreements/{agreement_id}/revoke"): frozenset({ADM}),
    ("GET", "/holds"): frozenset({INV, CMP, AUD}),
    ("POST", "/holds"): frozenset({INV}),
    ("POST", "/holds/{hold_id}/approve"): frozenset({CMP}),
    ("POST", "/holds/{hold_id}/release"): frozenset({INV, CMP}),
    ("GET", "/audit/entries"): frozenset({AUD, CMP}),
    ("GET", "/audit/verify"): frozenset({AUD, CMP}),
    ("GET", "/audit/checkpoint"): frozenset({AUD, CMP}),
    ("POST", "/.well-known/privplate/cosignature"): PUBLIC,
    ("POST", "/unseal/requests"): frozenset({INV}),
    ("GET", "/unseal/requests"): frozenset({INV, CMP, AUD}),
    ("GET", "/unseal/requests/{request_id}"): frozenset({INV, CMP, AUD}),
    ("POST", "/unseal/requests/{request_id}/approvals"): frozenset({CMP}),
    ("POST", "/unseal/requests/{request_id}/deny"): frozenset({CMP}),
    ("POST", "/unseal/requests/{request_id}/withdraw"): frozenset({INV}),
    ("GET", "/unseal/requests/{request_id}/image"): frozenset({INV}),
    ("GET", "/evidence-keys/current"): frozenset({ADM, OPR, CMP, AUD}),
    ("GET", "/retention/status"): frozenset({ADM, AUD, CMP}),
    ("GET", "/metrics"): frozenset({ADM, AUD, CMP}),
}
# FastAPI's own documentation routes: public by design, and they expose no data.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
CALLERS: list[Role | None] = [*USER_ROLES, Role.DEVICE, None]


def is_console(path: str) -> bool:
    """The console's pages have their own table (tests/test_console_roles.py)."""
    return path in {"/", "/console"} or path.startswith("/console/")


def _api_routes(api: Api) -> list[tuple[str, str, APIRoute]]:
    found = []
    for route in iter_routes(api.app.routes):
        if is_console(getattr(route, "path", "")):
            continue
        if isinstance(route, APIRoute):
            found.extend((m, route.path, route) for m in sorted(route.methods or ()))
        else:
            assert getattr(route, "path", None) in DOCS, f"unexpected non-API route {route}"
    return found


def test_every_route_is_in_the_table_with_its_declared_guard(api: Api) -> None:
    routes = _api_routes(api)
    seen = {(m, p) for m, p, _ in routes}
    documented = {
        (method.upper(), path)
        for path, item in api.app.openapi()["paths"].items()
        for method in item
    }
    assert documented == seen, "the OpenAPI schema and the routes disagree"
    assert seen == set(TABLE), (
        f"routes missing from TABLE: {sorted(seen - set(TABLE))}; "
        f"stale TABLE rows: {sorted(set(TABLE) - seen)}"
    )
    for method, path, route in routes:
        assert route_guard(route).roles == TABLE[(method, path)], (method, path)


def _concrete(path: str) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(uuid.uuid4()) if name.endswith("_id") and name != "device_id" else "x"

    return re.sub(r"\{(\w+)\}", fill, path)


def _status(api: Api, caller: Role | None, method: str, path: str) -> int:
    url = _concrete(path)
    if path == "/device/hotlist-tokens":
        url += "?epoch_id=1"
    if caller is Role.DEVICE:
        return api.signed(method, url, b"{}" if method in ("POST", "PUT") else b"").status_code
    if path == "/alerts/stream":
        with api.client.stream(method, url, headers=api.auth(caller)) as answer:
            return answer.status_code
    kwargs = {"json": {}} if method in ("POST", "PUT") else {}
    return api.call(caller, method, url, **kwargs).status_code


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.value if c else "anonymous")
def test_allow_and_deny_match_the_table(api: Api, caller: Role | None) -> None:
    wrong = []
    for (method, path), allowed in TABLE.items():
        status = _status(api, caller, method, path)
        permitted = not allowed or caller in allowed
        refused = status in (401, 403)
        if permitted == refused:
            wrong.append(f"{method} {path}: {status}")
    assert not wrong, f"as {caller}: " + "; ".join(wrong)


def test_a_route_without_a_guard_is_refused_at_startup(home: object) -> None:
    from fastapi import APIRouter

    from privplate.api import app as app_module

    rogue = APIRouter()

    @rogue.get("/reads/by-camera/{camera_id}", summary="what privplate must never have")
    def _by_camera(camera_id: str) -> dict[str, str]:
        return {"camera": camera_id}

    class RogueModule:
        router = rogue

    original = app_module.ROUTERS
    app_module.ROUTERS = (*original, RogueModule)  # type: ignore[assignment]
    try:
        with pytest.raises(RuntimeError, match="declares 0 access guards"):
            app_module.create_app(home, run_scheduler=False)  # type: ignore[arg-type]
    finally:
        app_module.ROUTERS = original
