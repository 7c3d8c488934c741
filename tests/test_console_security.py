"""The console's defences without a browser: CSRF and origin checks on every state change,
the session cookie's flags, the CSP and no-store on every page, sign-in throttling, sessions
that end, and no route that could take a plate in its URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from privplate.api.app import iter_routes
from privplate.console.security import CSP
from privplate.console.sessions import COOKIE
from privplate.identity.roles import Role
from tests.console_support import BASE, ConsoleClients, csrf_of, open_console, password
from tests.test_api_roles import is_console
from tests.test_console_roles import CONSOLE_TABLE


@pytest.fixture
def web(home: Path) -> Iterator[ConsoleClients]:
    yield from open_console(home)


def _password_change(web: ConsoleClients, role: Role, **extra: object) -> object:
    name = web.names[role]
    data = {
        "current": password(name),
        "new": "a brand new passphrase",
        "again": "a brand new passphrase",
    }
    data.update({k: str(v) for k, v in extra.items() if k != "headers"})
    headers = extra.get("headers") or {}
    return web.clients[role].post(
        "/console/account/password",
        data=data,
        headers=headers,
        follow_redirects=False,  # type: ignore[arg-type]
    )


def _still_signed_in(web: ConsoleClients, role: Role) -> bool:
    answer = web.clients[role].get("/console/account", follow_redirects=False)
    return answer.status_code == 200


def test_a_state_change_without_the_csrf_token_is_refused_and_changes_nothing(
    web: ConsoleClients,
) -> None:
    answer = _password_change(web, Role.OPERATOR)
    assert answer.status_code == 403  # type: ignore[attr-defined]
    assert "stale or was not sent from the console" in answer.text  # type: ignore[attr-defined]
    wrong = _password_change(web, Role.OPERATOR, csrf="0" * 64)
    assert wrong.status_code == 403  # type: ignore[attr-defined]
    # Another session's token is no good either.
    other = _password_change(web, Role.OPERATOR, csrf=web.csrf[Role.ADMIN])
    assert other.status_code == 403  # type: ignore[attr-defined]
    assert _still_signed_in(web, Role.OPERATOR)  # the password did not change: no sign-out


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_state_change_from_another_origin_is_refused_even_with_the_token(
    web: ConsoleClients, headers: dict[str, str]
) -> None:
    answer = _password_change(web, Role.OPERATOR, csrf=web.csrf[Role.OPERATOR], headers=headers)
    assert answer.status_code == 403  # type: ignore[attr-defined]
    assert "another" in answer.text  # type: ignore[attr-defined]
    assert _still_signed_in(web, Role.OPERATOR)


def test_the_same_change_with_token_and_own_origin_goes_through(web: ConsoleClients) -> None:
    answer = _password_change(
        web,
        Role.OPERATOR,
        csrf=web.csrf[Role.OPERATOR],
        headers={"Origin": BASE, "Sec-Fetch-Site": "same-origin"},
    )
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    assert "Password changed" in answer.text  # type: ignore[attr-defined]


def test_a_forged_sign_in_post_is_refused(web: ConsoleClients) -> None:
    client = web.anonymous()
    name = web.names[Role.ADMIN]
    # No pre-session cookie (a form on another site): refused before any password check.
    answer = client.post(
        "/console/sign-in", data={"csrf": "x", "name": name, "password": password(name)}
    )
    assert answer.status_code == 403
    assert COOKIE not in client.cookies
    # With the cookie but another value in the form: refused as well.
    client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in", data={"csrf": "x", "name": name, "password": password(name)}
    )
    assert answer.status_code == 403
    assert COOKIE not in client.cookies


def test_the_session_cookie_is_host_only_httponly_secure_and_strict(web: ConsoleClients) -> None:
    client = web.anonymous()
    form = client.get("/console/sign-in")
    pre = form.headers["set-cookie"]
    name = web.names[Role.AUDITOR]
    answer = client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(form.text), "name": name, "password": password(name)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    session = next(c for c in cookies if c.startswith(f"{COOKIE}="))
    for cookie in (session, pre):
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags, cookie
        assert not any(f.startswith("domain") for f in flags), cookie
    assert COOKIE.startswith("__Host-")
    assert answer.headers["location"] == "/console/auditor/audit"


def test_every_console_page_has_the_csp_and_no_store(web: ConsoleClients) -> None:
    checked = 0
    for (method, path), allowed in CONSOLE_TABLE.items():
        if method != "GET" or "{" in path or path.endswith("/stream"):
            continue
        role = next(iter(sorted(allowed))) if allowed else Role.OPERATOR
        answer = web.clients[role].get(path, follow_redirects=False)
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["cache-control"] == "no-store", path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["referrer-policy"] == "same-origin", path
        checked += 1
    assert checked >= 5
    assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP
    assert "unsafe-inline" not in CSP and "'unsafe-eval'" not in CSP
    # The API's answers carry them too (a revealed hotlist entry is JSON).
    health = web.anonymous().get("/health")
    assert health.headers["cache-control"] == "no-store"


def test_no_console_route_can_take_a_plate_in_its_url(web: ConsoleClients) -> None:
    for route in iter_routes(web.app_client.app.routes):  # type: ignore[attr-defined]
        if not (isinstance(route, APIRoute) and is_console(route.path)):
            continue
        in_url = route.dependant.path_params + route.dependant.query_params
        for param in in_url:
            assert "plate" not in param.name.lower(), (route.path, param.name)
        assert "plate" not in route.path.lower(), route.path


def _error_of(html: str) -> str:
    return html.split('class="error" role="alert">', 1)[1].split("<", 1)[0]


def test_sign_in_is_throttled_and_an_unknown_user_is_answered_alike(web: ConsoleClients) -> None:
    def attempt(name: str) -> tuple[int, str]:
        client = web.anonymous()
        form = client.get("/console/sign-in")
        answer = client.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "name": name, "password": "not the password"},
        )
        return answer.status_code, answer.text

    known, unknown = web.names[Role.OPERATOR], "nobody-at-all"
    first_known, first_unknown = attempt(known), attempt(unknown)
    assert first_known[0] == first_unknown[0] == 401
    for _ in range(10):
        last_known, last_unknown = attempt(known), attempt(unknown)
    assert last_known[0] == last_unknown[0] == 429
    assert "too many" in last_known[1].lower()
    assert _error_of(last_known[1]) == _error_of(last_unknown[1])
    assert _error_of(first_known[1]) == _error_of(first_unknown[1])
    # The real password is refused too while the account is throttled.
    client = web.anonymous()
    form = client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(form.text), "name": known, "password": password(known)},
        follow_redirects=False,
    )
    assert answer.status_code == 429


def test_sign_out_and_ending_a_session_from_another_one_end_them(web: ConsoleClients) -> None:
    from fastapi.testclient import TestClient

    from tests.console_support import sign_in

    name = web.names[Role.INVESTIGATOR]
    second = TestClient(web.app_client.app, base_url=BASE)
    sign_in(second, name)
    page = web.clients[Role.INVESTIGATOR].get("/console/account").text
    assert page.count('/end"') == 1  # the other session, with its End button
    end_path = next(
        part.split('"')[0]
        for part in page.split('action="')[1:]
        if part.startswith("/console/account/sessions/")
    )
    ended = web.clients[Role.INVESTIGATOR].post(
        end_path, data={"csrf": web.csrf[Role.INVESTIGATOR]}, follow_redirects=False
    )
    assert ended.status_code == 303
    assert second.get("/console/account", follow_redirects=False).status_code == 303
    out = web.clients[Role.INVESTIGATOR].post(
        "/console/sign-out", data={"csrf": web.csrf[Role.INVESTIGATOR]}, follow_redirects=False
    )
    assert out.status_code == 303
    assert not _still_signed_in(web, Role.INVESTIGATOR)


def test_an_idle_console_session_ends(web: ConsoleClients) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from privplate.store.server_models import Session

    assert _still_signed_in(web, Role.AUDITOR)
    idle = timedelta(minutes=web.dep.settings.server.session_idle_minutes)
    with web.dep.db.write() as conn:
        conn.execute(update(Session).values(last_used_at=datetime.now(UTC) - idle - timedelta(1)))
    answer = web.clients[Role.AUDITOR].get("/console/account", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"
