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

A, O, I, C, U, D = (
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
    ("POST", "/sessions"): PUBLIC,
    ("DELETE", "/sessions/current"): EVERY_USER,
    ("GET", "/me"): EVERY_USER,
    ("GET", "/users"): frozenset({A}),
    ("POST", "/users"): frozenset({A}),
    ("POST", "/users/{name}/disable"): frozenset({A}),
    ("PUT", "/users/{name}/password"): frozenset({A}),
    ("POST", "/users/{name}/api-keys"): frozenset({A}),
    ("DELETE", "/api-keys/{key_id}"): frozenset({A}),
    ("GET", "/cameras"): frozenset({O, A}),
    ("POST", "/cameras"): frozenset({O, A}),
    ("GET", "/devices"): frozenset({O, A}),
    ("POST", "/devices"): frozenset({O, A}),
    ("POST", "/devices/{device_id}/revoke"): frozenset({O, A}),
    ("GET", "/device/epoch"): frozenset({D}),
    ("GET", "/device/hotlist-tokens"): frozenset({D}),
    ("POST", "/ingest"): frozenset({D}),
    ("GET", "/hotlists"): frozenset({O}),
    ("POST", "/hotlists"): frozenset({O}),
    ("GET", "/hotlists/{name}"): frozenset({O}),
    ("GET", "/hotlists/{name}/entries"): frozenset({O}),
    ("POST", "/hotlists/{name}/entries"): frozenset({O}),
    ("POST", "/hotlists/{name}/import"): frozenset({O}),
    ("DELETE", "/hotlists/{name}/entries/{entry_id}"): frozenset({O}),
    ("GET", "/alerts"): frozenset({O, I, C}),
    ("GET", "/alerts/stream"): frozenset({O, I, C}),
    ("GET", "/webhooks"): frozenset({A}),
    ("POST", "/webhooks"): frozenset({A}),
    ("POST", "/webhooks/{webhook_id}/deactivate"): frozenset({A}),
    ("POST", "/queries"): frozenset({I}),
    ("GET", "/queries/mine"): frozenset({I}),
    ("GET", "/compliance/flags"): frozenset({C, U}),
    ("POST", "/compliance/flags/{flag_id}/review"): frozenset({C}),
    ("GET", "/compliance/queries"): frozenset({C, U}),
    ("GET", "/sharing-agreements"): frozenset({A, C, U}),
    ("POST", "/sharing-agreements"): frozenset({A}),
    ("POST", "/sharing-agreements/{agreement_id}/revoke"): frozenset({A}),
    ("GET", "/holds"): frozenset({I, C, U}),
    ("POST", "/holds"): frozenset({I}),
    ("POST", "/holds/{hold_id}/approve"): frozenset({C}),
    ("POST", "/holds/{hold_id}/release"): frozenset({I, C}),
    ("GET", "/audit/entries"): frozenset({U, C}),
    ("GET", "/audit/verify"): frozenset({U, C}),
    ("GET", "/audit/checkpoint"): frozenset({U, C}),
    ("GET", "/retention/status"): frozenset({A, U, C}),
    ("GET", "/metrics"): frozenset({A, U, C}),
}
# FastAPI's own documentation routes: public by design, and they expose no data.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
CALLERS: list[Role | None] = [*USER_ROLES, Role.DEVICE, None]


def _api_routes(api: Api) -> list[tuple[str, str, APIRoute]]:
    found = []
    for route in iter_routes(api.app.routes):
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
