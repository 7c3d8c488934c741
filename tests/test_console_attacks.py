"""The console attacked over HTTP, as a hostile insider or a forged page would: every state
change without (or with the wrong) CSRF token or from elsewhere, other people's imports,
sessions, requests and approvals, markup in stored text, oversized bodies, and a refused plate
form or a live stream that must not outlive what it belongs to."""

from __future__ import annotations

import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from privplate.api import create_app
from privplate.console.limits import MAX_CONSOLE_BODY
from privplate.console.sessions import COOKIE, PRE_COOKIE, csrf_for
from privplate.hotlists import EntryIn, HotlistSource
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.services import Services
from tests.console_support import (
    BASE,
    CAMERA,
    ConsoleClients,
    csrf_of,
    open_console,
    password,
    sign_in,
)
from tests.test_console_roles import CONSOLE_TABLE, _concrete

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


@pytest.fixture
def web(home: Path) -> Iterator[ConsoleClients]:
    yield from open_console(home)


def _services(web: ConsoleClients) -> Services:
    services: Services = web.app_client.app.state.services  # type: ignore[attr-defined]
    return services


def _hotlist(web: ConsoleClients, name: str) -> None:
    _services(web).hotlists.create(
        actor="test", name=name, source=HotlistSource.STOLEN_VEHICLE, description=""
    )


def _second(web: ConsoleClients, role: Role, name: str) -> tuple[TestClient, str]:
    """Another person of ``role``, signed in with a client of their own."""
    accounts.create_user(
        db=web.dep.db, audit=web.dep.audit, actor="test", name=name, role=role,
        password=password(name),
    )  # fmt: skip
    client = TestClient(web.app_client.app, base_url=BASE)
    return client, sign_in(client, name)


def _signed_in(client: TestClient) -> bool:
    answer = client.get("/console/account", follow_redirects=False)
    return bool(answer.status_code == 200)


# -- 3. CSRF and origin ----------------------------------------------------------------------


def _post_routes() -> list[tuple[str, Role]]:
    routes = []
    for (method, path), allowed in CONSOLE_TABLE.items():
        if method == "POST" and allowed:
            routes.append((path, sorted(allowed)[0]))
    return routes


def test_every_state_change_refuses_a_missing_foreign_or_pre_session_token(
    web: ConsoleClients,
) -> None:
    """Every POST route, as a role it lets in: no token, another session's token, the value of
    the pre-session cookie (which a signed-in client can get by opening the sign-in page),
    a wrong header token, and the right token from another origin: all 403."""
    routes = _post_routes()
    assert len(routes) >= 25
    wrong = []
    for path, role in routes:
        client = web.clients[role]
        other = next(r for r in web.csrf if r is not role)
        client.get("/console/sign-in")  # hands out a pre-session cookie, signed in or not
        pre = client.cookies.get(PRE_COOKIE)
        assert pre
        own = web.csrf[role]
        attempts: list[tuple[dict[str, str], dict[str, str]]] = [
            ({}, {}),
            ({"csrf": web.csrf[other]}, {}),
            ({"csrf": pre}, {}),
            ({}, {"X-CSRF-Token": web.csrf[other]}),
            ({"csrf": own}, {"Origin": "null"}),
            ({"csrf": own}, {"Origin": "https://evil.example"}),
            ({"csrf": own}, {"Sec-Fetch-Site": "cross-site"}),
            ({"csrf": own}, {"Sec-Fetch-Site": "same-site"}),
        ]
        for data, headers in attempts:
            answer = client.post(
                _concrete(path), data=data, headers=headers, follow_redirects=False
            )
            if answer.status_code != 403:
                wrong.append(f"{path} {data.keys()} {headers}: {answer.status_code}")
    assert wrong == []
    for role, client in web.clients.items():
        assert _signed_in(client), f"{role}: a refused post signed it out"


def test_the_pre_session_token_is_not_a_session_and_sign_in_issues_a_fresh_one(
    web: ConsoleClients,
) -> None:
    """No fixation: the session token is made at sign-in (not the pre-session value, not a
    token the client had), the pre-session cookie is dropped, and each sign-in gets its own."""
    client = web.anonymous()
    form = client.get("/console/sign-in")
    pre = client.cookies.get(PRE_COOKIE)
    name = web.names[Role.AUDITOR]
    tokens = []
    for _ in range(2):
        answer = client.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "name": name, "password": password(name)},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        token = client.cookies.get(COOKIE)
        assert token and token != pre
        assert client.cookies.get(PRE_COOKIE) is None
        tokens.append(token)
        form = client.get("/console/sign-in")
    assert tokens[0] != tokens[1]
    # A made-up session cookie is nobody's session.
    forged = TestClient(web.app_client.app, base_url=BASE, cookies={COOKIE: "pps_" + "A" * 43})
    assert not _signed_in(forged)


# -- 4. authorization --------------------------------------------------------------------------


def test_another_operators_pending_import_cannot_be_confirmed(web: ConsoleClients) -> None:
    _hotlist(web, "atk-pending")
    owner = web.clients[Role.OPERATOR]
    csv_text = "plate,reason,case_number\n7KP1001,stolen,ATK-3\n"
    preview = owner.post(
        "/console/operator/hotlists/atk-pending/import",
        data={"csrf": web.csrf[Role.OPERATOR]},
        files={"csv_file": ("a.csv", csv_text.encode(), "text/csv")},
    )
    assert preview.status_code == 200, preview.text
    key = re.search(r'name="pending" value="([^"]+)"', preview.text)
    assert key
    thief, thief_csrf = _second(web, Role.OPERATOR, "operator-two")
    stolen = thief.post(
        "/console/operator/hotlists/atk-pending/import/confirm",
        data={"csrf": thief_csrf, "pending": key.group(1)},
        follow_redirects=False,
    )
    assert stolen.status_code == 409
    assert _services(web).hotlists.get("atk-pending").live_entries == 0
    # The owner's own session still can (the thief's try did not use it up).
    done = owner.post(
        "/console/operator/hotlists/atk-pending/import/confirm",
        data={"csrf": web.csrf[Role.OPERATOR], "pending": key.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert _services(web).hotlists.get("atk-pending").live_entries == 1


def test_a_session_of_someone_else_cannot_be_ended_by_its_id(web: ConsoleClients) -> None:
    victim = web.clients[Role.AUDITOR]
    user = accounts.user_for_bearer(db=web.dep.db, secret=victim.cookies[COOKIE])
    assert user is not None
    (session,) = accounts.list_sessions(db=web.dep.db, user=user)
    answer = web.clients[Role.INVESTIGATOR].post(
        f"/console/account/sessions/{session.id}/end",
        data={"csrf": web.csrf[Role.INVESTIGATOR]},
        follow_redirects=False,
    )
    assert answer.status_code == 404
    assert _signed_in(victim)


def test_a_disabled_users_console_session_stops_at_once(web: ConsoleClients) -> None:
    victim = web.clients[Role.OPERATOR]
    assert _signed_in(victim)
    disabled = web.clients[Role.ADMIN].post(
        f"/console/admin/users/{web.names[Role.OPERATOR]}/disable",
        data={"csrf": web.csrf[Role.ADMIN]},
    )
    assert disabled.status_code == 200 and "Disabled" in disabled.text
    assert not _signed_in(victim)
    refused = victim.post(
        "/console/operator/hotlists",
        data={"csrf": web.csrf[Role.OPERATOR], "name": "after-disable", "source": "local-bolo"},
        follow_redirects=False,
    )
    assert refused.status_code == 303 and refused.headers["location"] == "/console/sign-in"
    assert all(h.name != "after-disable" for h in _services(web).hotlists.all())


def _ceremony_and_evidence(
    web: ConsoleClients, tmp: Path, count: int
) -> tuple[Any, list[uuid.UUID]]:
    """A held ceremony (the console's officer and two more) and ``count`` sealed items."""
    from privplate.ceremony.ceremony import hold_ceremony
    from privplate.sealing import seal
    from privplate.sealing.layout import pack_evidence
    from privplate.store import EvidenceIn
    from tests import factories
    from tests.unseal_support import CROP, FRAME

    dep = web.dep
    officers = [web.names[Role.COMPLIANCE], "officer-two", "officer-three"]
    for name in officers[1:]:
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="test", name=name, role=Role.COMPLIANCE,
            password=password(name),
        )  # fmt: skip
    result = hold_ceremony(
        dep,
        officers=[(n, f"{n} share") for n in officers],
        threshold=2,
        out_dir=tmp / "shares",
        strength="interactive",
    )
    items = []
    for i in range(count):
        evidence_id = uuid.uuid4()
        observed = datetime.now(UTC)
        sealed = seal(pack_evidence(CROP, FRAME), result.public_key, evidence_id=evidence_id)
        read = factories.read(
            dep, f"7KE{1000 + i}", camera_id=CAMERA, observed_at=observed, evidence_id=evidence_id
        )
        factories.ingest(dep, [read], [EvidenceIn(evidence_id, CAMERA, observed, sealed)])
        items.append(evidence_id)
    return result, items


def _file_request(web: ConsoleClients, evidence_id: uuid.UUID) -> uuid.UUID:
    filed = web.clients[Role.INVESTIGATOR].post(
        "/console/investigator/unseal",
        data={
            "csrf": web.csrf[Role.INVESTIGATOR],
            "evidence_id": str(evidence_id),
            "case_number": "ATK-4",
            "justification": "Hit-and-run on Elm Street; the image identifies the vehicle.",
        },
        follow_redirects=False,
    )
    assert filed.status_code == 303, filed.text
    user = accounts.user_for_bearer(
        db=web.dep.db, secret=web.clients[Role.INVESTIGATOR].cookies[COOKIE]
    )
    assert user is not None
    mine = _services(web).unseal.queue(viewer=user)
    return next(r.id for r in mine if r.evidence_id == evidence_id)


def test_another_investigators_request_and_image_are_not_found(
    web: ConsoleClients, tmp_path: Path
) -> None:
    _, (evidence_id,) = _ceremony_and_evidence(web, tmp_path, 1)
    request_id = _file_request(web, evidence_id)
    other, _ = _second(web, Role.INVESTIGATOR, "investigator-two")
    base = f"/console/investigator/unseal/{request_id}/image"
    for path in (base, f"{base}/frame.jpg", f"{base}/crop.jpg"):
        assert other.get(path).status_code == 404, path
    assert "ATK-4" not in other.get("/console/investigator/unseal").text
    assert web.clients[Role.INVESTIGATOR].get(base).status_code == 409  # pending: no image


def test_a_partial_replayed_onto_another_request_is_refused(
    web: ConsoleClients, tmp_path: Path
) -> None:
    """An officer's (index, partial, proof) for one request, posted for another (or posted
    again for the same one), counts for nothing."""
    from privplate.ceremony.sharefile import read_share_file
    from privplate.threshold.dleq import prove_partial
    from privplate.unseal.workflow import request_context

    ceremony, (first_item, second_item) = _ceremony_and_evidence(web, tmp_path, 2)
    first, second = _file_request(web, first_item), _file_request(web, second_item)
    officer = web.names[Role.COMPLIANCE]
    share = read_share_file(ceremony.files[officer]).open(f"{officer} share")
    user = accounts.user_for_bearer(
        db=web.dep.db, secret=web.clients[Role.COMPLIANCE].cookies[COOKIE]
    )
    assert user is not None
    info = _services(web).unseal.get(first, viewer=user)
    value, proof = prove_partial(
        share.value, info.ephemeral, request_context(first, info.evidence_id, info.share_set_id)
    )
    body = {
        "csrf": web.csrf[Role.COMPLIANCE],
        "share_index": str(share.index),
        "partial": value.hex(),
        "proof": proof.to_bytes().hex(),
    }
    client = web.clients[Role.COMPLIANCE]
    replayed = client.post(f"/console/officer/unseal/{second}/approve", data=body)
    assert replayed.status_code == 422, replayed.text
    assert "proof does not verify" in replayed.text
    assert _services(web).unseal.get(second, viewer=user).approvals == 0
    ok = client.post(f"/console/officer/unseal/{first}/approve", data=body, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    again = client.post(f"/console/officer/unseal/{first}/approve", data=body)
    assert again.status_code == 403
    assert _services(web).unseal.get(first, viewer=user).approvals == 1


# -- 5. stored markup --------------------------------------------------------------------------


def test_markup_in_stored_text_is_shown_as_text_on_every_page(web: ConsoleClients) -> None:
    services = _services(web)
    services.hotlists.create(
        actor="test", name="atk-xss", source=HotlistSource.LOCAL_BOLO, description=HOSTILE
    )
    services.hotlists.add_entries(
        actor="test", hotlist="atk-xss", entries=[EntryIn("7KX1001", HOSTILE, "ATK-5", None)]
    )
    admin = web.clients[Role.ADMIN]
    admin.post(
        "/console/admin/users",
        data={"csrf": web.csrf[Role.ADMIN], "name": "xss-user", "role": "auditor",
              "agency": HOSTILE},
    )  # fmt: skip
    shown = {
        Role.OPERATOR: ["/console/operator/hotlists", "/console/operator/hotlists/atk-xss"],
        Role.ADMIN: ["/console/admin/users"],
        Role.AUDITOR: ["/console/auditor/audit"],
    }
    escaped = "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    for role, paths in shown.items():
        for path in paths:
            html = web.clients[role].get(path).text
            assert "<script>alert(1)" not in html and "<img src=x" not in html, path
            assert escaped in html or HOSTILE.replace('"', '\\"')[:2] in html, path


# -- 1, 2. a refused plate form answers with a redirect ----------------------------------------


def test_a_refused_entry_is_answered_by_a_redirect_and_its_reason_on_the_next_page(
    web: ConsoleClients,
) -> None:
    """A page answering the entry form's post would leave the post (the plate) in the
    browser's session history (tests/console/test_attacks.py shows it on disk): refusals are
    303s too, whose page says why, once, and only in the session that was refused."""
    _hotlist(web, "atk-refusal")
    client, csrf = web.clients[Role.OPERATOR], web.csrf[Role.OPERATOR]
    page = "/console/operator/hotlists/atk-refusal"
    other, _ = _second(web, Role.OPERATOR, "operator-three")
    for fields, why in (
        ({"case_number": "bad case number"}, "case number of 1-64"),
        ({"expires_on": "2001-01-01"}, "in the past"),
        ({"plate": "7KZ" + "1" * 40}, "too long"),  # longer than any form limit
        ({"reason": ""}, "reason of 1-500"),
    ):
        data = {"csrf": csrf, "plate": "7KZ1001", "reason": "stolen", "case_number": "ATK-6"}
        data.update(fields)
        answer = client.post(f"{page}/entries", data=data, follow_redirects=False)
        assert answer.status_code == 303, (fields, answer.status_code)
        assert answer.headers["location"] == page
        assert other.get(page).text.count('role="alert"') == 0  # not another session's
        shown = client.get(page).text
        assert why in shown, (fields, why)
        assert "7KZ1" not in shown
        assert why not in client.get(page).text  # shown once
    assert _services(web).hotlists.get("atk-refusal").live_entries == 0


# -- 7. sizes ------------------------------------------------------------------------------------


def test_a_body_over_the_console_limit_is_refused_unread_and_nothing_spools_to_disk(
    web: ConsoleClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload past Starlette's in-memory size would be written to a temporary file: for a
    hotlist CSV, a file of plates on disk. And forms are parsed before any guard runs, so an
    unsigned-in client could make the server read and spool them. Both are refused first."""
    rolled: list[int] = []
    original = tempfile.SpooledTemporaryFile.rollover

    def rollover(self: Any) -> None:
        rolled.append(1)
        original(self)

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", rollover)
    _hotlist(web, "atk-big")
    row = b"7KB1234,stolen,ATK-7\n"
    big = b"plate,reason,case_number\n" + row * (17_000_000 // len(row))
    path = "/console/operator/hotlists/atk-big/import"
    for client, data in (
        (web.clients[Role.OPERATOR], {"csrf": web.csrf[Role.OPERATOR]}),
        (web.anonymous(), {}),
    ):
        answer = client.post(
            path, data=data, files={"csv_file": ("big.csv", big, "text/csv")},
            follow_redirects=False,
        )  # fmt: skip
        assert answer.status_code == 413, answer.status_code
        assert "Too large" in answer.text and "7KB1234" not in answer.text
        assert answer.headers["cache-control"] == "no-store"  # the console's headers too
    # A body without a length (chunked) is cut off at the limit just the same.
    chunk = b"x" * 65536
    chunks = (chunk for _ in range(MAX_CONSOLE_BODY // len(chunk) + 2))
    answer = web.clients[Role.OPERATOR].post(
        path,
        content=chunks,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
        follow_redirects=False,
    )
    assert answer.status_code == 413
    assert rolled == []
    assert _services(web).hotlists.get("atk-big").live_entries == 0
    # A CSV at the import's own limit still gets its preview.
    small = web.clients[Role.OPERATOR].post(
        path,
        data={"csrf": web.csrf[Role.OPERATOR]},
        files={"csv_file": ("ok.csv", b"plate,reason,case_number\n7KB1235,stolen,ATK-7\n")},
    )
    assert small.status_code == 200 and "1 row ready to import" in small.text


# -- 7. a live stream ends with its session ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(home: Path) -> Iterator[tuple[str, Services]]:
    """The console on a real server (TestClient cannot hold a stream open)."""
    from privplate.deployment import Deployment

    with Deployment.open(home, actor="test") as dep:
        dep.add_camera(CAMERA)
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="test", name="olive-sse", role=Role.OPERATOR,
            password=password("olive-sse"),
        )  # fmt: skip
    app = create_app(home, run_scheduler=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app.state.services
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_alert_stream_ends_when_its_session_is_signed_out(
    served: tuple[str, Services],
) -> None:
    """Signed out in another tab, the open stream must not go on delivering alerts: after the
    sign-out an alert is raised, and the stream ends instead of carrying it."""
    url, services = served
    dep = services.dep
    _user, token, _ = accounts.login(
        db=dep.db, audit=dep.audit, name="olive-sse", password=password("olive-sse"), hours=1
    )
    cookie = {"Cookie": f"{COOKIE}={token}"}
    services.hotlists.create(
        actor="test", name="atk-sse", source=HotlistSource.STOLEN_VEHICLE, description=""
    )
    services.hotlists.add_entries(
        actor="test", hotlist="atk-sse", entries=[EntryIn("7KS1001", "stolen", "ATK-8", None)]
    )
    opened = threading.Event()
    lines: list[str] = []
    ended: list[bool] = []

    def listen() -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10.0, read=60.0)) as client,
            client.stream("GET", f"{url}/console/operator/alerts/stream", headers=cookie) as answer,
        ):
            assert answer.status_code == 200
            for line in answer.iter_lines():
                opened.set()
                lines.append(line)
                if line.startswith("event: alert"):
                    return
        ended.append(True)

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert opened.wait(10), "the stream did not open"
    with httpx.Client(base_url=url, headers=cookie) as client:
        csrf = csrf_for(services, token)
        out = client.post(
            "/console/sign-out",
            data={"csrf": csrf},
            headers={"Origin": url, "Sec-Fetch-Site": "same-origin"},
        )
        assert out.status_code in (200, 303), out.text
    assert accounts.user_for_bearer(db=dep.db, secret=token) is None
    from tests import factories

    _, raised = services.ingest([factories.read(dep, "7KS1001", camera_id=CAMERA)], actor="test")
    assert len(raised) == 1  # an alert the stream would carry, were it still open
    reader.join(60)
    assert not reader.is_alive(), "the stream was still open a minute after the sign-out"
    assert not any(line.startswith("event: alert") for line in lines), lines
    assert ended == [True]


def test_the_api_alert_stream_ends_when_its_key_is_revoked(served: tuple[str, Services]) -> None:
    """The API's /alerts/stream runs the same loop (privplate.alerts.stream): a stream opened
    with an API key ends when the key is revoked, before it carries another alert."""
    url, services = served
    dep = services.dep
    key_id, key = accounts.create_api_key(
        db=dep.db, audit=dep.audit, actor="test", name="olive-sse"
    )
    services.hotlists.create(
        actor="test", name="atk-sse-api", source=HotlistSource.STOLEN_VEHICLE, description=""
    )
    services.hotlists.add_entries(
        actor="test", hotlist="atk-sse-api", entries=[EntryIn("7KS1002", "stolen", "ATK-9", None)]
    )
    opened = threading.Event()
    lines: list[str] = []

    def listen() -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10.0, read=60.0)) as client,
            client.stream(
                "GET", f"{url}/alerts/stream", headers={"Authorization": f"Bearer {key}"}
            ) as answer,
        ):
            assert answer.status_code == 200
            for line in answer.iter_lines():
                opened.set()
                lines.append(line)
                if line.startswith("event: alert"):
                    return

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert opened.wait(10), "the stream did not open"
    accounts.revoke_api_key(db=dep.db, audit=dep.audit, actor="test", key_id=key_id)
    from tests import factories

    _, raised = services.ingest([factories.read(dep, "7KS1002", camera_id=CAMERA)], actor="test")
    assert len(raised) == 1
    reader.join(60)
    assert not reader.is_alive(), "the stream was still open a minute after the revocation"
    assert not any(line.startswith("event: alert") for line in lines), lines
