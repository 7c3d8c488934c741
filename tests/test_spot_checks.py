"""Spot checks: a share of searches and hand-made hotlist entries drawn into a compliance
review queue, near-term ones always; one verdict each, by someone else; counted in the report;
and nothing a requester can see tells them whether their search was drawn."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, inspect, select, update
from typer.testing import CliRunner

from privplate.cli.main import app
from privplate.deployment import Deployment
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.policy.review import (
    DRAW_ACTION,
    VERDICT_ACTION,
    Candidate,
    SubjectKind,
    draw,
    draw_search,
)
from privplate.retention.purge import purge
from privplate.settings import Settings
from privplate.store.review_models import SpotCheck
from privplate.store.server_models import HotlistEntry, Query
from privplate.transparency import build_report, period_ending
from privplate.transparency.markdown import render_markdown
from tests import factories
from tests.api_support import Api, now
from tests.console_support import ConsoleClients, open_console
from tests.privacy import dump_database, hits_in_bytes
from tests.test_api_policy import _hotlist, ask, query_body
from tests.test_sign_in import _tables

PLATE = "7SPOT42"
NOTE = "Case file shows the stolen-vehicle report and the owner's statement."


def _draw_many(dep: Deployment, share: float, n: int) -> int:
    """The search path's draw step, ``n`` times: how many landed in the queue."""
    with dep.db.write() as conn:
        before = conn.execute(select(func.count()).select_from(SpotCheck)).scalar_one()
        t = datetime.now(UTC)
        for _ in range(n):
            draw_search(
                conn,
                dep.audit,
                query_id=uuid.uuid4(),
                requester="user:investigator-1",
                share=share,
                terms=(),
                now=t,
            )
        after = conn.execute(select(func.count()).select_from(SpotCheck)).scalar_one()
    return int(after - before)


@pytest.mark.parametrize("share", [0.05, 0.25])
def test_the_drawn_share_is_the_setting_within_binomial_bounds(
    dep: Deployment, share: float
) -> None:
    n = 10_000
    audit_before = dep.audit.size()
    drawn = _draw_many(dep, share, n)
    # 4.5 standard deviations: a false alarm about once in 150,000 runs, while a share of 0,
    # or twice the setting, is far outside (500 +- 98 for 0.05, 2500 +- 195 for 0.25).
    sigma = math.sqrt(n * share * (1 - share))
    assert abs(drawn - n * share) <= 4.5 * sigma, (drawn, n * share, sigma)
    # One draw entry per search, drawn or not: the log's size says nothing about draws.
    assert dep.audit.size() - audit_before == n


def test_share_zero_never_draws_and_one_always_does(dep: Deployment) -> None:
    assert _draw_many(dep, 0.0, 2_000) == 0
    assert _draw_many(dep, 1.0, 2_000) == 2_000


def test_near_term_candidates_always_land_in_the_queue(dep: Deployment) -> None:
    with dep.db.write() as conn:
        t = datetime.now(UTC)
        searches = [
            draw_search(
                conn,
                dep.audit,
                query_id=uuid.uuid4(),
                requester="user:investigator-1",
                share=0.0,
                terms=("ice", "ero"),
                now=t,
            )
            for _ in range(300)
        ]
        # Entries near a term are queued whatever the share.
        entries = draw(
            conn,
            dep.audit,
            kind=SubjectKind.HOTLIST_ENTRY,
            candidates=[
                Candidate(uuid.uuid4(), "user:operator-1", 0.0, ("ice",)),
                *(Candidate(uuid.uuid4(), "user:operator-1", 0.0) for _ in range(50)),
            ],
            about={"hotlist": "x"},
            now=t,
        )
        rows = conn.execute(select(SpotCheck.reason, SpotCheck.terms)).all()
    assert all(len(s) == 1 for s in searches) and len(entries) == 1
    assert len(rows) == 301
    assert {(r.reason, r.terms) for r in rows} == {
        ("near-term", '["ero", "ice"]'),
        ("near-term", '["ice"]'),
    }
    details = [e.entry.details for e in dep.audit.entries(action=DRAW_ACTION) if e.entry]
    assert details[-1]["considered"] == 51 and len(details[-1]["drawn"]) == 1


# -- through the API --------------------------------------------------------------------------


def _share(api: Api, monkeypatch: pytest.MonkeyPatch, share: float) -> None:
    monkeypatch.setattr(api.services.queries.settings, "spot_check_share", share)


def _queue(api: Api, role: Role = Role.COMPLIANCE, **params: str) -> list[dict[str, Any]]:
    answer = api.call(role, "GET", "/compliance/reviews", params=params)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def _searchable(api: Api) -> None:
    """Two reads of the plate, so that the searches below have something to find."""
    reads = [factories.read(api.dep, PLATE, observed_at=now()) for _ in range(2)]
    assert api.ingest(reads).status_code == 200


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def _normal(text: str) -> str:
    return _TIME.sub("TIME", _UUID.sub("ID", text))


def _answer(response: httpx.Response) -> tuple[int, str, list[tuple[str, str]]]:
    headers = [(k, v) for k, v in response.headers.items() if k not in ("date",)]
    return response.status_code, _normal(response.text), headers


def test_the_requester_cannot_tell_whether_their_search_was_drawn(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _searchable(api)
    start, end = now() - timedelta(days=1), now() + timedelta(minutes=5)
    body = query_body(PLATE, start=start.isoformat(), end=end.isoformat())
    report_before = api.client.get("/transparency").json()["spot_checks"]
    answers: dict[float, list[tuple[int, str, list[tuple[str, str]]]]] = {}
    audit_growth: dict[float, list[int]] = {}
    for share in (1.0, 0.0, 1.0, 0.0):
        _share(api, monkeypatch, share)
        size = api.dep.audit.size()
        response = api.call(Role.INVESTIGATOR, "POST", "/queries", json=body)
        assert response.status_code == 200, response.text
        answers.setdefault(share, []).append(_answer(response))
        audit_growth.setdefault(share, []).append(api.dep.audit.size() - size)
    queue = _queue(api)
    assert len(queue) == 2 and {q["reason"] for q in queue} == {"random"}
    assert len(answers[1.0][0][1]) > 100  # the answer lists the two reads found
    # Same status, same body (but for the query id), same headers, drawn or not.
    assert answers[1.0][0] == answers[0.0][0] == answers[1.0][1] == answers[0.0][1]
    # The audit log (whose size the public checkpoint shows) grows alike.
    assert audit_growth[1.0] == audit_growth[0.0]
    # The investigator's own list shows the four alike.
    mine = api.call(Role.INVESTIGATOR, "GET", "/queries/mine")
    assert mine.status_code == 200
    records = {_normal(str(sorted(r.items()))) for r in mine.json()}
    assert len(mine.json()) == 4 and len(records) == 1
    # No surface an investigator may call shows the queue or the log.
    for path in ("/compliance/reviews", f"/compliance/reviews/{queue[0]['id']}", "/audit/entries"):
        assert api.call(Role.INVESTIGATOR, "GET", path).status_code == 403, path
    # The public report does not change within the day.
    assert api.client.get("/transparency").json()["spot_checks"] == report_before


@pytest.fixture
def web(home: Path) -> Iterator[ConsoleClients]:
    yield from open_console(home)


def test_the_console_shows_a_drawn_search_like_any_other(
    web: ConsoleClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = web.dep
    reads = [factories.read(dep, PLATE, observed_at=now()) for _ in range(2)]
    factories.ingest(dep, reads)
    services = web.app_client.app.state.services  # type: ignore[attr-defined]
    client, csrf = web.clients[Role.INVESTIGATOR], web.csrf[Role.INVESTIGATOR]
    form = {
        "csrf": csrf,
        "plate": PLATE,
        "start": (now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "end": (now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "purpose": "stolen-vehicle",
        "case_number": "SPD-2026-0042",
        "justification": "Vehicle reported stolen from the Elm Street lot last night.",
    }
    pages: dict[float, list[tuple[int, str, list[tuple[str, str]]]]] = {}
    for share in (1.0, 0.0, 1.0, 0.0):
        monkeypatch.setattr(services.queries.settings, "spot_check_share", share)
        answer = client.post("/console/investigator/search", data=form)
        assert answer.status_code == 200, answer.text
        pages.setdefault(share, []).append(_console(answer))
    with dep.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(SpotCheck)).scalar_one() == 2
    assert "gate-1" in pages[1.0][0][1]  # the page lists the reads found
    assert pages[1.0][0] == pages[0.0][0] == pages[1.0][1] == pages[0.0][1]
    listed = client.get("/console/investigator/searches")
    assert listed.status_code == 200
    assert "spot" not in listed.text.lower() and "review" not in listed.text.lower()


_NONCE = re.compile(r"(nonce-|nonce=\"|csrf\" value=\")[A-Za-z0-9_\-+/=]+")


def _console(response: httpx.Response) -> tuple[int, str, list[tuple[str, str]]]:
    status, body, headers = _answer(response)
    normal = [(k, _NONCE.sub(r"\1N", v)) for k, v in headers if k != "set-cookie"]
    return status, _NONCE.sub(r"\1N", body), normal


def test_near_terms_of_the_screen_decide_what_is_queued_beyond_the_draw(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the random draw off, exactly the searches whose justification or case number the
    screen finds near a forbidden term are queued, with those terms."""
    _share(api, monkeypatch, 0.0)
    policy = api.services.policy
    texts = [
        "Black ice on Route 9; the car slid into the ditch and drove off.",
        "Hit and run outside the ice rink on Elm Street, witness statement.",
        "Ice cream truck reported stolen from the depot on Main Street.",
        "Tourist car from Iceland reported stolen at the harbour car park.",
        "Police office report: vehicle stolen, owner statement taken.",
        "Vehicle stolen from the service station on the ring road at night.",
        "Missing person, last seen driving north on the county road.",
    ]
    expected = {}
    for why in texts:
        answer = ask(api, plate=PLATE, justification=why)
        if answer.status_code != 200:  # refused by the screen: not a search to review
            continue
        terms = policy.near_terms(why, "SPD-2026-0042")
        if terms:
            expected[answer.json()["query_id"]] = sorted(set(terms))
    # Hand-made entries alike, over their reason and case number.
    monkeypatch.setattr(api.services.hotlists.settings, "spot_check_share", 0.0)
    _hotlist(api, "watch")
    for i, why in enumerate(texts):
        entry = {"plate": f"4NEAR{i:02d}", "reason": why[:500], "case_number": f"SPD-{i}"}
        added = api.call(
            Role.OPERATOR, "POST", "/hotlists/watch/entries", json={"entries": [entry]}
        )
        if added.status_code != 201:
            continue
        terms = policy.near_terms(entry["reason"], entry["case_number"])
        if terms:
            expected[added.json()[0]["id"]] = sorted(set(terms))
    # "black ice", "ice rink": accepted for their context, but near the agency's acronym.
    assert len(expected) >= 2, "the screen found nothing near a term in these phrasings"
    queue = _queue(api)
    assert {q["subject_id"]: q["terms"] for q in queue} == expected
    assert all(q["reason"] == "near-term" for q in queue)


def _second_officer_account(api: Api) -> str:
    """A compliance account of the person behind investigator-1, with an API key."""
    dep = api.dep
    accounts.create_user(
        db=dep.db,
        audit=dep.audit,
        actor="test",
        name="ivy-compliance",
        role=Role.COMPLIANCE,
        password=None,
        person=api.names[Role.INVESTIGATOR],
    )
    return accounts.create_api_key(db=dep.db, audit=dep.audit, actor="test", name="ivy-compliance")[
        1
    ]


def test_one_verdict_by_someone_else_audited(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _share(api, monkeypatch, 1.0)
    assert ask(api, plate=PLATE).status_code == 200
    (item,) = _queue(api)
    path = f"/compliance/reviews/{item['id']}/verdict"
    verdict = {"verdict": "needs-follow-up", "note": NOTE}
    # The requester's own compliance account may not review their search.
    own = _second_officer_account(api)
    refused = api.client.post(path, json=verdict, headers={"Authorization": f"Bearer {own}"})
    assert refused.status_code == 403 and "your own" in refused.json()["error"]["message"]
    assert api.call(Role.AUDITOR, "POST", path, json=verdict).status_code == 403
    assert api.call(Role.COMPLIANCE, "POST", path, json={**verdict, "note": ""}).status_code == 422
    done = api.call(Role.COMPLIANCE, "POST", path, json=verdict)
    assert done.status_code == 200, done.text
    assert done.json()["verdict"] == "needs-follow-up" and done.json()["note"] == NOTE
    again = api.call(Role.COMPLIANCE, "POST", path, json={**verdict, "verdict": "consistent"})
    assert again.status_code == 409
    shown = api.call(Role.AUDITOR, "GET", f"/compliance/reviews/{item['id']}")
    assert shown.status_code == 200
    assert shown.json()["review"]["verdict"] == "needs-follow-up"
    assert shown.json()["search"]["justification"] == query_body()["justification"]
    assert PLATE not in shown.text
    entries = [e for e in api.dep.audit.entries(action="spot_checks.") if e.entry is not None]
    actions = [e.action for e in entries]
    assert actions.count(DRAW_ACTION) == 1 and actions.count(VERDICT_ACTION) == 1
    assert actions.count("spot_checks.verdict_refused") == 2
    (recorded,) = [e for e in entries if e.action == VERDICT_ACTION]
    assert recorded.actor == f"user:{api.names[Role.COMPLIANCE]}"
    assert recorded.entry is not None and recorded.entry.details["note"] == NOTE
    # The queue: reviewed items after open ones, and the filters.
    _share(api, monkeypatch, 1.0)
    assert ask(api, plate=PLATE).status_code == 200
    ordered = _queue(api)
    assert [q["verdict"] for q in ordered] == [None, "needs-follow-up"]
    assert len(_queue(api, open_only="true")) == 1
    assert _queue(api, reason="near-term") == [] and _queue(api, kind="hotlist-entry") == []


def test_hand_made_entries_are_drawn_and_imports_are_not(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.services.hotlists.settings, "spot_check_share", 1.0)
    _hotlist(api, "stolen")
    typed = [
        {"plate": "5TYPE01", "reason": "stolen from driveway", "case_number": "SPD-7"},
        {"plate": "5TYPE02", "reason": "stolen from car park", "case_number": "SPD-8"},
    ]
    answer = api.call(Role.OPERATOR, "POST", "/hotlists/stolen/entries", json={"entries": typed})
    assert answer.status_code == 201, answer.text
    csv_text = "plate,reason,case_number\n6FILE01,state list,ST-1\n6FILE02,state list,ST-2\n"
    imported = api.call(
        Role.OPERATOR,
        "POST",
        "/hotlists/stolen/import",
        content=csv_text,
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 201, imported.text
    queue = _queue(api, kind="hotlist-entry")
    assert {q["subject_id"] for q in queue} == {e["id"] for e in answer.json()}
    # One draw entry per batch, imports included, whatever was drawn.
    draws = [e.entry.details for e in api.dep.audit.entries(action=DRAW_ACTION) if e.entry]
    assert [(d["entries"], d["considered"], len(d["drawn"])) for d in draws] == [
        (2, 2, 2),
        (2, 0, 0),
    ]
    shown = api.call(Role.COMPLIANCE, "GET", f"/compliance/reviews/{queue[0]['id']}")
    assert shown.status_code == 200
    entry = shown.json()["hotlist_entry"]
    assert entry["hotlist"] == "stolen" and entry["reason"].startswith("stolen from")
    assert "5TYPE0" not in shown.text
    # The operator's own account is the requester: the person rule covers entries too.
    assert {q["requester"] for q in queue} == {f"user:{api.names[Role.OPERATOR]}"}


def test_verdicts_and_draws_appear_in_the_report_from_the_next_day(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _share(api, monkeypatch, 1.0)
    assert ask(api, plate=PLATE).status_code == 200
    assert ask(api, plate=PLATE).status_code == 200
    _share(api, monkeypatch, 0.0)
    assert ask(api, plate=PLATE).status_code == 200
    first, second = _queue(api)
    for item, verdict in ((first, "consistent"), (second, "violation")):
        path = f"/compliance/reviews/{item['id']}/verdict"
        answer = api.call(Role.COMPLIANCE, "POST", path, json={"verdict": verdict, "note": NOTE})
        assert answer.status_code == 200, answer.text
    dep, t = api.dep, now()
    start, end = period_ending(t.date(), 7)
    today = build_report(dep, start=start, end=end, now=t)["spot_checks"]
    assert today["searches"]["drawn"] == {"random": 0, "near-term": 0}
    # Built tomorrow, the same period counts today's draws and verdicts.
    tomorrow = build_report(dep, start=start, end=end, now=end + timedelta(hours=1))
    spot = tomorrow["spot_checks"]
    assert spot["counted_until"] == end.isoformat()
    searches = spot["searches"]
    assert searches["drawn"] == {"random": 2, "near-term": 0} and searches["reviewed"] == 2
    assert searches["verdicts"] == {"consistent": 1, "needs-follow-up": 0, "violation": 1}
    hours = searches["hours_to_review"]
    assert hours["median"] is not None and 0 <= hours["median"] <= hours["max"] < 1
    assert spot["hotlist_entries"]["drawn"] == {"random": 0, "near-term": 0}
    markdown = render_markdown(tomorrow)
    assert "| searches | 2 | 0 | 2 | 1 | 0 | 1 |" in markdown
    for secret in (PLATE, NOTE, query_body()["justification"], *api.names.values()):
        assert secret not in markdown and secret not in str(tomorrow), secret


def test_the_cli_lists_shows_and_records_on_the_same_service(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _share(api, monkeypatch, 1.0)
    assert ask(api, plate=PLATE).status_code == 200
    (item,) = _queue(api)
    accounts.create_user(
        db=api.dep.db,
        audit=api.dep.audit,
        actor="test",
        name="cleo",
        role=Role.COMPLIANCE,
        password="cleo's long passphrase",
    )
    run = CliRunner()
    home = ["--dir", str(api.home)]
    listed = run.invoke(app, ["compliance", "reviews", "--open", *home])
    assert listed.exit_code == 0, listed.output
    assert item["id"] in listed.output and "random" in listed.output
    shown = run.invoke(app, ["compliance", "review", item["id"], *home])
    assert shown.exit_code == 0, shown.output
    assert "Elm Street" in shown.output and PLATE not in shown.output
    args = ["compliance", "review", item["id"], "--verdict", "consistent", "--note", NOTE]
    done = run.invoke(
        app, [*args, "--user", "cleo", "--password-stdin", *home], input="cleo's long passphrase\n"
    )
    assert done.exit_code == 0, done.output
    again = run.invoke(
        app, [*args, "--user", "cleo", "--password-stdin", *home], input="cleo's long passphrase\n"
    )
    assert again.exit_code != 0 and "once" in again.output
    assert _queue(api)[0]["reviewer"] == "user:cleo"


def test_the_share_settings_are_bounded() -> None:
    from pydantic import ValidationError

    assert Settings().queries.spot_check_share == 0.05
    assert Settings().hotlists.spot_check_share == 0.05
    for bad in (-0.1, 1.5):
        with pytest.raises(ValidationError):
            Settings.model_validate({"queries": {"spot_check_share": bad}})


def test_the_migration_matches_the_model(dep: Deployment) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from privplate.store.database import MIGRATIONS_DIR
    from privplate.store.models import Base

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with dep.db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011_sign_in")
        assert "spot_checks" not in inspect(conn).get_table_names()
        command.upgrade(cfg, "head")
        conn.commit()
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
        assert [d for d in diffs if "spot_checks" in _tables(d)] == []


# -- gaming the queue -------------------------------------------------------------------------


LONG_AGO = datetime(1990, 1, 1, tzinfo=UTC)  # past any audit window


def _age(api: Api) -> None:
    """Every query and spot check on the record, made long ago."""
    with api.dep.db.write() as conn:
        conn.execute(update(Query).values(created_at=LONG_AGO))
        conn.execute(update(SpotCheck).values(drawn_at=LONG_AGO))


def test_removing_a_drawn_entry_or_aging_a_drawn_search_leaves_the_review_its_subject(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator who adds an entry for someone and removes it at once, or a search past the
    audit window, must not take the substance of an open review with it: retention keeps
    what the reviewer reads, and the review itself, until the verdict."""
    monkeypatch.setattr(api.services.hotlists.settings, "spot_check_share", 1.0)
    _share(api, monkeypatch, 1.0)
    _hotlist(api, "watch")
    entry = {"plate": "5GONE01", "reason": "Stolen from the Elm St lot", "case_number": "SPD-9"}
    added = api.call(Role.OPERATOR, "POST", "/hotlists/watch/entries", json={"entries": [entry]})
    assert added.status_code == 201, added.text
    entry_id = added.json()[0]["id"]
    path = f"/hotlists/watch/entries/{entry_id}"
    assert api.call(Role.OPERATOR, "DELETE", path).status_code in (200, 204)
    assert ask(api, plate=PLATE).status_code == 200
    _age(api)
    purge(api.dep)
    with api.dep.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(HotlistEntry)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(Query)).scalar_one() == 0
    queue = _queue(api, open_only="true")
    assert {q["kind"] for q in queue} == {"search", "hotlist-entry"}
    for item in queue:
        shown = api.call(Role.COMPLIANCE, "GET", f"/compliance/reviews/{item['id']}")
        assert shown.status_code == 200, shown.text
        body = shown.json()
        if item["kind"] == "search":
            assert body["search"]["justification"] == query_body()["justification"]
            assert body["search"]["requester"] == api.names[Role.INVESTIGATOR]
        else:
            kept = body["hotlist_entry"]
            assert (kept["hotlist"], kept["reason"], kept["case_number"]) == (
                "watch",
                entry["reason"],
                "SPD-9",
            )
            assert kept["removed_at"] is not None  # removed before anyone looked
        assert PLATE not in shown.text and "5GONE01" not in shown.text
    # Reviewed and then past the window, the review goes too.
    for item in queue:
        verdict = {"verdict": "violation", "note": NOTE}
        answer = api.call(
            Role.COMPLIANCE, "POST", f"/compliance/reviews/{item['id']}/verdict", json=verdict
        )
        assert answer.status_code == 200, answer.text
    purge(api.dep)
    assert len(_queue(api)) == 2  # reviewed today: within the window
    with api.dep.db.write() as conn:
        conn.execute(update(SpotCheck).values(reviewed_at=LONG_AGO))
    purge(api.dep)
    assert _queue(api) == []
    assert hits_in_bytes(dump_database(api.dep.settings.resolved_database_url), ["5GONE01"]) == []


def test_an_officer_cannot_review_an_entry_made_from_another_of_their_accounts(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.services.hotlists.settings, "spot_check_share", 1.0)
    _hotlist(api, "watch")
    entry = {"plate": "5SELF01", "reason": "Stolen from the Elm St lot", "case_number": "SPD-4"}
    added = api.call(Role.OPERATOR, "POST", "/hotlists/watch/entries", json={"entries": [entry]})
    assert added.status_code == 201, added.text
    (item,) = _queue(api, kind="hotlist-entry")
    accounts.create_user(
        db=api.dep.db,
        audit=api.dep.audit,
        actor="test",
        name="olly-compliance",
        role=Role.COMPLIANCE,
        password=None,
        person=api.names[Role.OPERATOR],
    )
    key = accounts.create_api_key(
        db=api.dep.db, audit=api.dep.audit, actor="test", name="olly-compliance"
    )[1]
    refused = api.client.post(
        f"/compliance/reviews/{item['id']}/verdict",
        json={"verdict": "consistent", "note": NOTE},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 403 and "your own" in refused.json()["error"]["message"]
    assert _queue(api)[0]["verdict"] is None
