"""The console and the edge fleet, over HTTP with real cookie sessions: device alerts (a silent
camera, raised and cleared by the real health check) on the operator's alerts page without
outcome buttons and counted apart on the dashboard; the operator's enrolment codes, made
through the same service as `privplate devices enrol-code`, shown once, listed without the
code, refused to other roles and to a forged post."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from privplate.alerts import AlertInfo
from privplate.devices import DeviceKey, enrolment
from privplate.hotlists import EntryIn, HotlistSource
from privplate.identity.roles import Role
from privplate.services import Services
from tests import factories
from tests.console_support import CAMERA, ConsoleClients, csrf_of, open_console
from tests.device_alert_support import add_device, camera_back, silent_camera
from tests.privacy import dump_database

ALERTS = "/console/operator/alerts"
CODES = "/console/operator/enrolment-codes"
CODE = re.compile(r'<code class="secret" id="secret">([0-9A-Z]{5}(?:-[0-9A-Z]{5}){3})</code>')
_ITEM = re.compile(r'<li id="alert-(\d+)"[^>]*>(.*?)</li>', re.DOTALL)
PLATE = "7KF1001"  # a test label, in memory only


@pytest.fixture
def web(home: Path) -> Iterator[ConsoleClients]:
    yield from open_console(home)


def _services(web: ConsoleClients) -> Services:
    services: Services = web.app_client.app.state.services  # type: ignore[attr-defined]
    return services


def _hotlist_alert(web: ConsoleClients) -> AlertInfo:
    """A read matching a hotlist entry, ingested as an edge's batch is."""
    services = _services(web)
    services.hotlists.create(
        actor="test", name="fleet-stolen", source=HotlistSource.STOLEN_VEHICLE, description=""
    )
    services.hotlists.add_entries(
        actor="test", hotlist="fleet-stolen", entries=[EntryIn(PLATE, "stolen", "FLT-1", None)]
    )
    _, raised = services.ingest([factories.read(web.dep, PLATE, camera_id=CAMERA)], actor="test")
    (hit,) = raised
    return hit


def _items(html: str) -> dict[int, str]:
    """The server-rendered alert rows of the alerts page, by alert id."""
    return {int(i): body for i, body in _ITEM.findall(html)}


def _operator(web: ConsoleClients) -> TestClient:
    return web.clients[Role.OPERATOR]


# -- device alerts on the live alerts page ------------------------------------------------------


def test_a_device_alert_is_shown_as_a_camera_problem_without_outcome_buttons(
    web: ConsoleClients,
) -> None:
    hit = _hotlist_alert(web)
    device = add_device(web.dep, "fleet-edge-1", [CAMERA])
    raised = silent_camera(web.dep, device)

    page = _operator(web).get(ALERTS)
    assert page.status_code == 200
    items = _items(page.text)
    assert set(items) == {hit.id, raised.id}
    assert "Hotlist <span" in items[hit.id] and 'name="outcome"' in items[hit.id]
    shown = items[raised.id]
    assert "Silent camera" in shown and "camera silent: no frame" in shown
    assert f">{CAMERA}<" in shown and ">fleet-edge-1<" in shown
    assert "not cleared yet" in shown
    assert "<form" not in shown and "<button" not in shown and "Hotlist" not in shown
    # The live page's template for device alerts has no buttons either.
    template = page.text.split('<template id="device-alert-template"', 1)[1].split("</template>")[0]
    assert "<form" not in template and "<button" not in template
    assert "data-kinds='" in page.text and '"silent_camera": "Silent camera"' in page.text

    # Frames again: the raising row shows it cleared, the clearing row says what it ends.
    cleared = camera_back(web.dep, device)
    items = _items(_operator(web).get(ALERTS).text)
    assert "cleared at" in items[raised.id] and "not cleared yet" not in items[raised.id]
    assert "Silent camera cleared" in items[cleared.id]
    assert f"this ends the problem of alert {raised.id}" in items[cleared.id]
    assert "camera back: frames are arriving again" in items[cleared.id]
    assert "<form" not in items[cleared.id]


def test_an_outcome_for_a_device_alert_is_refused_by_the_service(web: ConsoleClients) -> None:
    """The console adds no rule: the outcome service knows no device alert (404), while the
    hotlist alert's outcome is recorded."""
    hit = _hotlist_alert(web)
    raised = silent_camera(web.dep, add_device(web.dep, "fleet-edge-2", [CAMERA]))
    csrf = web.csrf[Role.OPERATOR]
    refused = _operator(web).post(
        f"{ALERTS}/{raised.id}/outcome",
        data={"csrf": csrf, "outcome": "confirmed"},
        follow_redirects=False,
    )
    assert refused.status_code == 404
    done = _operator(web).post(
        f"{ALERTS}/{hit.id}/outcome",
        data={"csrf": csrf, "outcome": "confirmed"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    outcomes = [e.entry.details for e in web.dep.audit.entries(action="alerts.outcome") if e.entry]
    assert [d["alert"] for d in outcomes] == [hit.id]


# -- the dashboard -------------------------------------------------------------------------------


def _dashboard(web: ConsoleClients) -> dict[str, int]:
    html = _operator(web).get("/console/operator").text
    return {
        name: int(re.search(rf'id="{name}">(\d+)<', html).group(1))  # type: ignore[union-attr]
        for name in ("alerts-today", "camera-problems-today", "camera-problems-open")
    }


def test_the_dashboard_counts_hotlist_alerts_and_camera_problems_apart(
    web: ConsoleClients,
) -> None:
    zero = {"alerts-today": 0, "camera-problems-today": 0, "camera-problems-open": 0}
    assert _dashboard(web) == zero
    _hotlist_alert(web)
    device = add_device(web.dep, "fleet-edge-3", [CAMERA])
    silent_camera(web.dep, device)
    assert _dashboard(web) == {
        "alerts-today": 1,
        "camera-problems-today": 1,
        "camera-problems-open": 1,
    }
    camera_back(web.dep, device)  # the clearing row is no second problem
    assert _dashboard(web) == {
        "alerts-today": 1,
        "camera-problems-today": 1,
        "camera-problems-open": 0,
    }
    html = _operator(web).get("/console/operator").text
    assert "hotlist alerts" in html and "camera problems" in html


# -- enrolment codes -----------------------------------------------------------------------------


def _make_code(web: ConsoleClients, **fields: str | list[str]) -> httpx.Response:
    data: dict[str, str | list[str]] = {
        "csrf": web.csrf[Role.OPERATOR],
        "cameras": [CAMERA],
        "name": "north gate box",
    }
    data.update(fields)
    answer: httpx.Response = _operator(web).post(CODES, data=data, follow_redirects=False)
    return answer


def test_an_operator_makes_a_code_shown_once_and_listed_without_it(
    web: ConsoleClients, database_url: str
) -> None:
    web.dep.add_camera("gate-2")
    form = _operator(web).get(CODES)
    assert form.status_code == 200
    assert f'value="{CAMERA}"' in form.text and 'value="gate-2"' in form.text
    assert csrf_of(form.text) == web.csrf[Role.OPERATOR]
    assert "No enrolment code yet." in form.text

    made = _make_code(web, cameras=[CAMERA, "gate-2"], minutes="30")
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    assert "location" not in made.headers
    found = CODE.search(made.text)
    assert found, "the code is not on the page"
    code = found.group(1)
    server_key = _services(web).dep.audit.signer.note_verifier.vkey()
    assert server_key in made.text

    # On the record: made by the admin, named by its id, for both cameras; never the code.
    (info,) = enrolment.list_codes(db=web.dep.db)
    assert info.cameras == (CAMERA, "gate-2") and info.created_by == "user:operator-web"
    assert timedelta(minutes=29) < info.expires_at - datetime.now(UTC) <= timedelta(minutes=30)
    assert str(info.id) in made.text
    (entry,) = list(web.dep.audit.entries(action="devices.enrolment_code_created"))
    assert entry.actor == "user:operator-web" and entry.entry is not None
    details = entry.entry.details
    assert details["code"] == str(info.id)
    symbols = code.replace("-", "")
    assert code not in str(details) and symbols not in str(details)
    dump = dump_database(database_url)
    assert code.encode() not in dump and symbols.encode() not in dump

    listing = _operator(web).get(CODES).text
    row = listing.split(f'id="code-{info.id}"', 1)[1].split("</tr>", 1)[0]
    assert f"{CAMERA}, gate-2" in row and "north gate box" in row and ">unused<" in row
    assert code not in listing and symbols not in listing

    # Used by a box (the service POST /devices/enrol calls): the listing says by which.
    services = _services(web)
    enrolment.enrol(
        db=web.dep.db,
        audit=web.dep.audit,
        secret=services.secret,
        limits=enrolment.enrolment_limits(web.dep.settings.server, services.secret),
        refusals=services.refusals,
        code=code,
        public_key=DeviceKey.generate("fleet-north").public_key,
        device_id="fleet-north",
        address="127.0.0.1",
    )
    row = _operator(web).get(CODES).text.split(f'id="code-{info.id}"', 1)[1].split("</tr>", 1)[0]
    assert "used by fleet-north at" in row

    # One made long ago has expired unused.
    old = enrolment.create_code(
        db=web.dep.db,
        audit=web.dep.audit,
        secret=services.secret,
        actor="test",
        cameras=[CAMERA],
        minutes=1,
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    row = _operator(web).get(CODES).text.split(f'id="code-{old.id}"', 1)[1].split("</tr>", 1)[0]
    assert "expired, unused" in row and old.code not in row


def test_the_services_refusals_are_shown_on_the_form(web: ConsoleClients) -> None:
    none = _make_code(web, cameras=[])
    assert none.status_code == 422
    assert "an enrolment code is for at least one camera" in none.text
    unknown = _make_code(web, cameras=["gate-99"])
    assert unknown.status_code == 404
    assert "camera &#39;gate-99&#39; is not registered" in unknown.text
    too_long = _make_code(web, minutes=str(enrolment.MAX_MINUTES + 1))
    assert too_long.status_code == 422
    assert "valid for 1 to" in too_long.text
    assert not CODE.search(too_long.text)
    assert enrolment.list_codes(db=web.dep.db) == []


def test_only_an_operator_sees_or_makes_enrolment_codes(web: ConsoleClients) -> None:
    _make_code(web)  # one on the record that nobody else may see
    for role in (Role.ADMIN, Role.INVESTIGATOR, Role.COMPLIANCE, Role.AUDITOR):
        client = web.clients[role]
        seen = client.get(CODES)
        assert seen.status_code == 403, role
        made = client.post(
            CODES, data={"csrf": web.csrf[role], "cameras": [CAMERA]}, follow_redirects=False
        )
        assert made.status_code == 403, role
        assert not CODE.search(made.text), role
    anonymous = web.anonymous().get(CODES, follow_redirects=False)
    assert anonymous.status_code in (303, 401)
    assert len(enrolment.list_codes(db=web.dep.db)) == 1
    denied = [
        e.entry.details["path"]
        for e in web.dep.audit.entries(action="access.denied", actor="user:admin-web")
        if e.entry
    ]
    assert denied == [CODES, CODES]
    # Only the admin's menu links the page.
    assert f'href="{CODES}"' in _operator(web).get("/console/operator").text
    assert f'href="{CODES}"' not in web.clients[Role.ADMIN].get("/console/admin/users").text


def test_a_forged_enrolment_code_post_is_refused(web: ConsoleClients) -> None:
    client = _operator(web)
    csrf = web.csrf[Role.OPERATOR]
    forged = [
        client.post(CODES, data={"cameras": [CAMERA]}),  # no token
        client.post(CODES, data={"csrf": "0" * 64, "cameras": [CAMERA]}),  # another's token
        client.post(  # the right token, from another site
            CODES,
            data={"csrf": csrf, "cameras": [CAMERA]},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        ),
    ]
    for answer in forged:
        assert answer.status_code == 403, answer.text
        assert not CODE.search(answer.text)
    assert enrolment.list_codes(db=web.dep.db) == []
    assert not list(web.dep.audit.entries(action="devices.enrolment_code_created"))
    assert _make_code(web).status_code == 201
