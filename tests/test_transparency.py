"""The public transparency report: numbers from the system's own records, nothing personal."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from privplate.audit.note import split_note
from privplate.cli.main import app
from privplate.identity.roles import Role
from privplate.retention.purge import purge
from tests import factories
from tests.api_support import Api, now
from tests.test_api_policy import _entries, _hotlist, ask

HOTLISTED, PASSING = "7HOT123", "8PASS99"
CASE, SECRET_WHY = "SPD-2026-0042", "Vehicle reported stolen from the Elm Street lot last night."


def activity(api: Api) -> None:
    """Five reads (one a hotlist hit), two searches (one denied), one sharing agreement, a purge."""
    _hotlist(api, "stolen")
    assert _entries(api, "stolen", [HOTLISTED]).status_code == 201
    reads = [factories.read(api.dep, HOTLISTED, observed_at=now())]
    reads += [factories.read(api.dep, f"{PASSING}{i}", observed_at=now()) for i in range(4)]
    assert api.ingest(reads).status_code == 200
    agreement = api.call(
        Role.ADMIN,
        "POST",
        "/sharing-agreements",
        json={
            "agency": "County Sheriff",
            "out_of_state": False,
            "declaration_signed": False,
            "document_reference": "MOU 2026-3",
            "purposes": ["stolen-vehicle"],
            "expires_at": (now() + timedelta(days=30)).isoformat(),
        },
    )
    assert agreement.status_code == 201, agreement.text
    assert ask(api, plate=HOTLISTED, agreement_id=agreement.json()["id"]).status_code == 200
    assert ask(api, plate=PASSING, purpose="immigration-enforcement").status_code == 403
    # The officer who acted on the alert reports it led to a stop (first said "confirmed").
    alert = api.call(Role.OPERATOR, "GET", "/alerts").json()[0]["id"]
    for outcome in ("confirmed", "stop"):
        path = f"/alerts/{alert}/outcome"
        answer = api.call(Role.OPERATOR, "POST", path, json={"outcome": outcome})
        assert answer.status_code == 200, answer.text
    purge(api.dep)


def test_the_report_counts_what_happened_and_names_nobody(api: Api) -> None:
    activity(api)
    answer = api.client.get("/transparency")  # no sign-in: it is public
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["reads"]["reads_stored"] == 5 and report["reads"]["hit_reads_stored"] == 1
    assert report["reads"]["per_camera"] == {"gate-1": {"reads": 5}}
    assert report["reads"]["hotlists"] == [
        {"name": "stolen", "source": "stolen-vehicle", "entries_now": 1}
    ]
    assert report["alerts"]["total"] == 1 and report["alerts"]["by_hotlist"] == {"stolen": 1}
    assert report["alerts"]["by_camera"] == {"gate-1": 1}
    assert report["alerts"]["outcomes_reported"] == {"stop": 1}
    assert report["alerts"]["did_not_pan_out"] == 0
    searches = report["searches"]
    assert searches["total"] == 2 and searches["answered"] == 1
    assert searches["answered_with_a_match"] == 1
    assert searches["refused"] == {"denied_by_policy": 1}
    assert searches["by_purpose"] == {"immigration-enforcement": 1, "stolen-vehicle": 1}
    assert searches["answered_by_agency"] == {"County Sheriff": 1}
    assert searches["people_who_searched"] == 1
    access = report["access"]
    assert [a["agency"] for a in access["sharing_agreements"]] == ["County Sheriff"]
    assert access["accounts_by_role"]["investigator"] == 1 and access["edge_devices"] == 1
    assert report["retention"]["purge_runs"] == 1
    policy = report["policy"]
    assert policy["preset"] == "vendor-default-30d"
    assert "immigration-enforcement" in policy["forbidden_purposes"]
    assert policy["windows_seconds"]["non_hit_reads"] == 30 * 86_400
    assert report["audit_log"]["tree_size"] == api.dep.audit.size()

    markdown = api.client.get("/transparency.md")
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith(
        "text/markdown"
    )
    assert "County Sheriff" in markdown.text and "| stolen-vehicle | 1 |" in markdown.text
    # No plate, case number, justification or person's name, in either form.
    for text in (answer.text, markdown.text):
        for secret in (HOTLISTED, PASSING, CASE, SECRET_WHY, *api.names.values()):
            assert secret not in text, secret


def test_the_public_period_is_at_least_a_week(api: Api) -> None:
    assert api.client.get("/transparency?days=3").status_code == 422
    assert api.client.get("/transparency?days=31").status_code == 422
    assert api.client.get("/transparency?days=7").status_code == 200


def test_a_published_report_is_bound_to_the_audit_log(api: Api, tmp_path: Path) -> None:
    activity(api)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app, ["report", "--json", "--days", "30", "--out", str(out), "--dir", str(api.home)]
    )
    assert result.exit_code == 0, result.output
    # The written file is the signed note; its text is the report (tests/test_signed_report.py).
    report = json.loads(split_note(out.read_text())[0])
    assert report["reads"]["reads_stored"] == 5
    published = [
        e.entry.details
        for e in api.dep.audit.entries(action="transparency.published")
        if e.entry is not None
    ]
    assert published and published[-1]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    markdown = CliRunner().invoke(app, ["report", "--dir", str(api.home)])
    assert markdown.exit_code == 0 and "# ALPR transparency report" in markdown.output


def test_alert_outcomes_are_a_closed_set_and_audited(api: Api) -> None:
    activity(api)
    alerts = api.call(Role.INVESTIGATOR, "GET", "/alerts").json()
    assert alerts[0]["outcome"] == "stop"
    bad = api.call(
        Role.OPERATOR,
        "POST",
        f"/alerts/{alerts[0]['id']}/outcome",
        json={"outcome": "driver looked suspicious"},
    )
    assert bad.status_code == 422 and "suspicious" not in bad.text
    missing = api.call(Role.OPERATOR, "POST", "/alerts/999999/outcome", json={"outcome": "misread"})
    assert missing.status_code == 404
    changes = [
        e.entry.details
        for e in api.dep.audit.entries(action="alerts.outcome")
        if e.entry is not None
    ]
    history = [(c["outcome"], c["previous"]) for c in changes]
    assert history == [("confirmed", None), ("stop", "confirmed")]


def test_counts_that_one_audit_entry_covers_and_lists_without_entries(api: Api) -> None:
    from privplate.retention.holds import approve_hold, request_hold
    from privplate.transparency import build_report, period_ending

    dep, t = api.dep, now()
    reads = [factories.read(dep, f"HOLD{i}", observed_at=t - timedelta(days=2)) for i in range(3)]
    factories.ingest(dep, reads, now=t - timedelta(days=2))
    for read in reads:  # three holds of one day, all expiring in the same purge
        held = request_hold(
            db=dep.db,
            audit=dep.audit,
            kind="read",
            target_id=read.read_id,
            case_number="C-1",
            justification="hit-and-run investigation",
            requested_by="investigator-1",
            duration=timedelta(days=1),
            now=t - timedelta(days=2),
        )
        approve_hold(
            db=dep.db,
            audit=dep.audit,
            hold_id=held.id,
            approved_by="compliance-1",
            now=t - timedelta(days=2),
        )
    purge(dep)
    _hotlist(api, "emptied")
    assert _entries(api, "emptied", [HOTLISTED]).status_code == 201
    entry = api.call(Role.OPERATOR, "GET", "/hotlists/emptied/entries").json()[0]["id"]
    removed = api.call(Role.OPERATOR, "DELETE", f"/hotlists/emptied/entries/{entry}")
    assert removed.status_code in (200, 204), removed.text

    start, end = period_ending(t.date(), 7)
    report = build_report(dep, start=start, end=end)
    assert report["legal_holds"]["expired"] == 3
    assert report["reads"]["hotlists"] == [
        {"name": "emptied", "source": "stolen-vehicle", "entries_now": 0}
    ]


def test_reads_per_camera_per_day_in_every_form(api: Api, tmp_path: Path) -> None:
    """Every UTC day of the period for every camera that read in it, zeros included; each
    camera's days add up to its period total; the same series in JSON, the CLI and Markdown."""
    from privplate.transparency import build_report, period_ending

    dep, t = api.dep, now()
    factories.camera(dep, "gate-2")
    today, yesterday, two_ago = (t - timedelta(days=n) for n in (0, 1, 2))
    plates = [f"{PASSING}{i}" for i in range(6)]
    reads = [factories.read(dep, plates[0], observed_at=two_ago)]
    reads += [factories.read(dep, p, observed_at=today) for p in plates[1:3]]
    reads += [factories.read(dep, p, camera_id="gate-2", observed_at=yesterday) for p in plates[3:]]
    assert api.ingest(reads[:3]).status_code == 200  # gate-1 through its device
    factories.ingest(dep, reads[3:])  # gate-2 has no device here: the store's ingest
    # A read 20 days ago: outside the 7-day period, inside a 30-day one.
    factories.ingest(dep, [factories.read(dep, "9OLD000", observed_at=t - timedelta(days=20))])

    answer = api.client.get("/transparency?days=7")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    series = report["reads"]["per_camera_per_day"]
    first, last = (t - timedelta(days=6)).date(), t.date()
    days = [(first + timedelta(days=i)).isoformat() for i in range(7)]
    assert [(r["day"], r["camera_id"]) for r in series] == [
        (day, cam) for day in days for cam in ("gate-1", "gate-2")
    ]
    nonzero = {(r["day"], r["camera_id"]): r["reads"] for r in series if r["reads"]}
    assert nonzero == {
        (two_ago.date().isoformat(), "gate-1"): 1,
        (yesterday.date().isoformat(), "gate-2"): 3,
        (today.date().isoformat(), "gate-1"): 2,
    }
    assert all(set(r) == {"day", "camera_id", "reads"} for r in series)
    for cam, total in report["reads"]["per_camera"].items():
        assert sum(r["reads"] for r in series if r["camera_id"] == cam) == total["reads"]
    assert report["reads"]["per_camera"] == {"gate-1": {"reads": 3}, "gate-2": {"reads": 3}}

    start, end = period_ending(last, 7)
    assert build_report(dep, start=start, end=end)["reads"]["per_camera_per_day"] == series
    month = build_report(dep, start=end - timedelta(days=30), end=end)["reads"]
    assert len(month["per_camera_per_day"]) == 30 * 2  # the 20-day-old read is in this one
    assert {(r["day"], r["reads"]) for r in month["per_camera_per_day"] if r["reads"]} >= {
        ((t - timedelta(days=20)).date().isoformat(), 1)
    }

    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app, ["report", "--json", "--days", "7", "--out", str(out), "--dir", str(api.home)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(split_note(out.read_text())[0])["reads"]["per_camera_per_day"] == series

    markdown = api.client.get("/transparency.md?days=7").text
    assert "| day (UTC) | gate-1 | gate-2 |" in markdown
    assert f"| {two_ago.date().isoformat()} | 1 | 0 |" in markdown
    assert f"| {yesterday.date().isoformat()} | 0 | 3 |" in markdown
    assert f"| {today.date().isoformat()} | 2 | 0 |" in markdown
    assert f"| {first.isoformat()} | 0 | 0 |" in markdown
    for text in (answer.text, markdown, out.read_text()):
        for secret in (*plates, "9OLD000", *api.names.values()):
            assert secret not in text, secret


def test_a_period_without_readings_has_an_empty_series(api: Api) -> None:
    report = api.client.get("/transparency?days=7").json()
    assert report["reads"]["per_camera_per_day"] == [] and report["reads"]["per_camera"] == {}
    markdown = api.client.get("/transparency.md?days=7").text
    assert "Readings per camera per day:\n\n(none)\n" in markdown
