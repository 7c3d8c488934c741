"""A second person for searches: a search whose purpose needs approval answers nothing until a
compliance officer who is not the requester approved it; its plate is kept only encrypted to
the request, and is gone once the search ran, was denied or expired."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from privplate.api import create_app
from privplate.cli.main import app as cli_app
from privplate.errors import ApprovalRefused, PrivplateError, SealingError
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.approval_box import (
    SEALED_BYTES,
    associated_data,
    open_request_plate,
    seal_request_plate,
)
from privplate.policy.queries import QueryRequest
from privplate.retention.purge import purge
from privplate.server_secret import ServerSecret
from privplate.store.approval_models import SearchApproval
from privplate.store.server_models import Query
from tests import factories
from tests.api_support import Api, now, open_api
from tests.conftest import vectors
from tests.privacy import dump_database, hits_in_bytes
from tests.test_api_policy import audited, query_body

PLATE = "7FEL042"
OTHER = "8OTH777"
FELONY = "felony-investigation"
WHY = "Armed robbery at the Elm Street pharmacy; getaway car seen by two witnesses."
CASE = "SPD-2026-0777"
CMP2 = "compliance-2"  # a second compliance officer, another person
TWIN = "investigator-1.cmp"  # a compliance account of the investigator's own person


def account(api: Api, name: str, role: Role, person: str | None = None) -> dict[str, str]:
    """Another account (of ``person``, else a new person) and the headers that act as it."""
    dep = api.dep
    accounts.create_user(
        db=dep.db, audit=dep.audit, actor="test", name=name, role=role, password=None, person=person
    )
    key = accounts.create_api_key(db=dep.db, audit=dep.audit, actor="test", name=name)[1]
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def api(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("PRIVPLATE_QUERIES__APPROVAL_REQUIRED", f'["{FELONY}"]')
    for opened in open_api(home):
        HEADERS.clear()
        HEADERS[CMP2] = account(opened, CMP2, Role.COMPLIANCE)
        HEADERS[TWIN] = account(opened, TWIN, Role.COMPLIANCE, opened.names[Role.INVESTIGATOR])
        yield opened


#: Headers of the extra accounts of the test running now.
HEADERS: dict[str, dict[str, str]] = {}


def file(api: Api, plate: str = PLATE, **overrides: Any) -> dict[str, Any]:
    body = query_body(plate, purpose=FELONY, case_number=CASE, justification=WHY, **overrides)
    answer = api.call(Role.INVESTIGATOR, "POST", "/queries", json=body)
    assert answer.status_code == 202, answer.text
    pending: dict[str, Any] = answer.json()
    return pending


def decide(api: Api, approval_id: str, verb: str, who: str | None = None, **body: str) -> Any:
    path = f"/search-approvals/{approval_id}/{verb}"
    if who is None:
        return api.call(Role.COMPLIANCE, "POST", path, json=body)
    return api.client.post(path, json=body, headers=HEADERS[who])


def run(api: Api, approval_id: str) -> Any:
    return api.call(Role.INVESTIGATOR, "POST", f"/search-approvals/{approval_id}/run")


def row(api: Api, approval_id: str) -> Any:
    with api.dep.db.read() as conn:
        return conn.execute(
            select(SearchApproval).where(SearchApproval.id == uuid.UUID(approval_id))
        ).one()


def stored_plates(api: Api) -> list[bytes]:
    with api.dep.db.read() as conn:
        values = conn.execute(select(SearchApproval.sealed_plate)).scalars().all()
    return [bytes(v) for v in values if v is not None]


def seen(api: Api, plate: str = PLATE) -> None:
    assert api.ingest([factories.read(api.dep, plate, observed_at=now())]).status_code == 200


def no_plate_in(*texts: str) -> None:
    for text in texts:
        assert hits_in_bytes(text.encode(), [PLATE, OTHER]) == [], text


# -- nothing until approved -----------------------------------------------------------------


def test_a_search_needing_approval_answers_nothing_until_approved_and_runs_once(
    api: Api,
) -> None:
    seen(api)
    pending = file(api)
    assert pending["status"] == "pending" and "matches" not in pending
    assert set(pending) >= {"id", "purpose", "case_number", "justification", "expires_at"}
    with api.dep.db.read() as conn:
        assert conn.execute(select(Query)).all() == []  # nothing looked up, nothing counted
    assert audited(api, "queries.answered") == []
    # Before approval the requester can only see it waiting; running it is refused.
    status = api.call(Role.INVESTIGATOR, "GET", f"/search-approvals/{pending['id']}")
    assert status.status_code == 200 and status.json()["status"] == "pending"
    early = run(api, pending["id"])
    assert early.status_code == 403 and "not approved" in early.json()["error"]["message"]
    # The officer's queue shows who asked and why, never the plate.
    queue = api.call(Role.COMPLIANCE, "GET", "/search-approvals?status=pending")
    assert queue.status_code == 200
    (listed,) = queue.json()
    assert listed["requested_by"] == api.names[Role.INVESTIGATOR]
    assert (listed["purpose"], listed["case_number"], listed["justification"]) == (
        FELONY,
        CASE,
        WHY,
    )
    assert not any("plate" in key for key in listed)
    approved = decide(api, pending["id"], "approve", note="Nexus checked.")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    with api.dep.db.read() as conn:
        assert conn.execute(select(Query)).all() == []  # approving runs nothing either
    answer = run(api, pending["id"])
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["matches"]) == 1
    again = run(api, pending["id"])
    assert again.status_code == 403 and "is run, not approved" in again.json()["error"]["message"]
    after = row(api, pending["id"])
    assert after.status == "run" and after.sealed_plate is None
    with api.dep.db.read() as conn:
        (query,) = conn.execute(select(Query)).all()
    assert (query.id, query.outcome, query.match_count) == (after.query_id, "answered", 1)
    done = api.call(Role.INVESTIGATOR, "GET", f"/search-approvals/{pending['id']}").json()
    assert done["status"] == "run" and done["query_id"] == str(query.id)
    no_plate_in(queue.text, approved.text, status.text, answer.text, str(done))


def test_other_purposes_run_at_once_and_the_gate_cannot_be_skipped(api: Api) -> None:
    seen(api)
    direct = api.call(Role.INVESTIGATOR, "POST", "/queries", json=query_body(PLATE))
    assert direct.status_code == 200 and len(direct.json()["matches"]) == 1
    # Calling the one search path directly, as any surface would, refuses the purpose.
    investigator = _user(api, api.names[Role.INVESTIGATOR])
    at = now()
    request = QueryRequest(PLATE, at - timedelta(days=1), at, Purpose(FELONY), CASE, WHY)
    with pytest.raises(ApprovalRefused, match="need a second person's approval"):
        api.services.queries.run(investigator, request)
    pending = file(api)
    forged = QueryRequest(
        PLATE,
        request.start,
        request.end,
        request.purpose,
        CASE,
        WHY,
        approval_id=uuid.UUID(pending["id"]),
    )
    with pytest.raises(ApprovalRefused, match="not approved"):
        api.services.queries.run(investigator, forged)
    assert decide(api, pending["id"], "approve").status_code == 200
    # An approval is for that search alone: another plate or window under it is refused.
    start, end = _window(api, pending)
    for plate, since in ((OTHER, start), (PLATE, at - timedelta(days=3))):
        other = QueryRequest(
            plate, since, end, Purpose(FELONY), CASE, WHY, approval_id=forged.approval_id
        )
        with pytest.raises(ApprovalRefused, match="not the one that was approved"):
            api.services.queries.run(investigator, other)
    assert row(api, pending["id"]).status == "approved"
    # The console and every surface call QueryService.run; none has another way.
    with api.dep.db.read() as conn:
        outcomes = conn.execute(select(Query.outcome)).scalars().all()
    assert outcomes == ["answered"]


def _user(api: Api, name: str) -> accounts.UserInfo:
    with api.dep.db.read() as conn:
        found = accounts.person_accounts(conn, accounts.persons_of(conn, [name])[name])
    return next(u for u in found if u.name == name)


def _window(api: Api, pending: dict[str, Any]) -> tuple[Any, Any]:
    r = row(api, pending["id"])
    return r.window_start, r.window_end


# -- the second person ------------------------------------------------------------------------


def test_the_requester_cannot_approve_from_any_account(api: Api) -> None:
    pending = file(api)
    for verb, body in (("approve", {}), ("deny", {"note": "mine"})):
        refused = decide(api, pending["id"], verb, TWIN, **body)
        assert refused.status_code == 403, refused.text
        assert "cannot decide on their own search" in refused.json()["error"]["message"]
    assert row(api, pending["id"]).status == "pending"
    assert len(audited(api, "search_approvals.refused")) == 2
    # An investigator is not an approver at all; another investigator does not see it.
    as_investigator = api.call(
        Role.INVESTIGATOR, "POST", f"/search-approvals/{pending['id']}/approve", json={}
    )
    assert as_investigator.status_code == 403
    ivo = account(api, "ivo", Role.INVESTIGATOR)
    assert api.client.get(f"/search-approvals/{pending['id']}", headers=ivo).status_code == 404
    assert api.client.post(f"/search-approvals/{pending['id']}/run", headers=ivo).status_code == 404
    assert api.client.get("/search-approvals", headers=ivo).json() == []
    # Another person approves.
    assert decide(api, pending["id"], "approve", CMP2).status_code == 200


# -- no ciphertext left -----------------------------------------------------------------------


def _expire(api: Api, approval_id: str) -> None:
    with api.dep.db.write() as conn:
        conn.execute(
            update(SearchApproval)
            .where(SearchApproval.id == uuid.UUID(approval_id))
            .values(expires_at=now() - timedelta(seconds=1))
        )


def in_dump(url: str, values: list[bytes]) -> list[bytes]:
    """Which of ``values`` a copy of the database holds: in the SQLite files and WAL (live rows
    or leftovers in free space), or in a pg_dump (which writes bytes as hex)."""
    dump = dump_database(url)
    return [v for v in values if v in dump or v.hex().encode() in dump]


def test_denied_and_expired_requests_leave_no_ciphertext(api: Api) -> None:
    denied, expired, lapsed = file(api), file(api, OTHER), file(api)
    sealed = stored_plates(api)
    assert len(sealed) == 3 and all(len(s) == SEALED_BYTES for s in sealed)
    url = api.dep.settings.resolved_database_url
    assert in_dump(url, sealed) == sealed  # the scan below does see a stored ciphertext
    assert decide(api, denied["id"], "deny", note="No nexus shown.").status_code == 200
    assert decide(api, lapsed["id"], "approve").status_code == 200
    _expire(api, expired["id"])
    _expire(api, lapsed["id"])
    # Expired before any purge ran: it can be neither approved nor run.
    late = decide(api, expired["id"], "approve")
    assert late.status_code == 403 and "is expired" in late.json()["error"]["message"]
    assert run(api, lapsed["id"]).status_code == 403
    for approval_id, status in (
        (denied["id"], "denied"),
        (expired["id"], "expired"),
        (lapsed["id"], "expired"),
    ):
        r = row(api, approval_id)
        assert (r.status, r.sealed_plate) == (status, None)
    assert stored_plates(api) == []
    assert {e["request"] for e in audited(api, "search_approvals.expired")} == {
        expired["id"],
        lapsed["id"],
    }
    if api.dep.db.is_sqlite:  # the erased bytes leave pages and WAL with the next purge
        assert api.dep.db.scrub_marker.exists()
    purge(api.dep)
    assert in_dump(url, sealed) == []
    assert hits_in_bytes(dump_database(url), [PLATE, OTHER]) == []


def test_the_purge_expires_what_nobody_read(api: Api) -> None:
    pending = file(api)
    _expire(api, pending["id"])
    report = purge(api.dep)  # no service call came first
    assert report.records_deleted["search_approval_plates"] == 1
    assert (row(api, pending["id"]).status, stored_plates(api)) == ("expired", [])
    (entry,) = audited(api, "search_approvals.expired")
    assert entry == {
        "request": pending["id"],
        "purpose": FELONY,
        "case_number": CASE,
        "was": "pending",
    }


def test_byte_scans_find_no_plate_after_a_full_cycle(api: Api) -> None:
    seen(api)
    pending = file(api)
    url = api.dep.settings.resolved_database_url
    assert hits_in_bytes(dump_database(url), [PLATE]) == []  # while pending: ciphertext only
    assert decide(api, pending["id"], "approve").status_code == 200
    answer = run(api, pending["id"])
    assert answer.status_code == 200 and answer.json()["matches"]
    assert hits_in_bytes(dump_database(url), [PLATE]) == []
    purge(api.dep)
    assert hits_in_bytes(dump_database(url), [PLATE]) == []
    entries = [e.entry.details for e in api.dep.audit.entries() if e.entry is not None]
    assert hits_in_bytes(repr(entries).encode(), [PLATE]) == []


def test_a_ciphertext_moved_to_another_request_does_not_open(api: Api) -> None:
    first, second = file(api), file(api, OTHER)
    moved = row(api, first["id"]).sealed_plate
    with api.dep.db.write() as conn:
        conn.execute(
            update(SearchApproval)
            .where(SearchApproval.id == uuid.UUID(second["id"]))
            .values(sealed_plate=moved)
        )
    assert decide(api, second["id"], "approve").status_code == 200
    refused = run(api, second["id"])
    assert refused.status_code == 403
    assert "does not open for this request" in refused.json()["error"]["message"]
    with api.dep.db.read() as conn:
        assert conn.execute(select(Query)).all() == []
    key = api.services.secret.subkey("search-approval")
    sealed = seal_request_plate(key, uuid.UUID(first["id"]), "7FEL042")
    with pytest.raises(SealingError):
        open_request_plate(key, uuid.UUID(second["id"]), sealed)
    with pytest.raises(SealingError):
        open_request_plate(bytes(32), uuid.UUID(first["id"]), sealed)
    assert open_request_plate(key, uuid.UUID(first["id"]), sealed) == "7FEL042"


def test_sealed_plate_vector() -> None:
    """SPEC §10.6 from crypto/vectors/server.json."""
    data = cast(dict[str, Any], vectors("server"))
    v = data["search_approval"]
    secret = ServerSecret(bytes.fromhex(data["server_subkeys"]["secret"]))
    key = secret.subkey("search-approval")
    request_id = uuid.UUID(v["request_id"])
    assert associated_data(request_id).hex() == v["associated_data"]
    sealed = seal_request_plate(key, request_id, v["canonical"], nonce=bytes.fromhex(v["nonce"]))
    assert sealed.hex() == v["sealed"]
    assert open_request_plate(key, request_id, sealed) == v["canonical"]


# -- the rules still apply when it runs -------------------------------------------------------


def test_quota_and_policy_apply_at_run_time(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVPLATE_QUERIES__APPROVAL_REQUIRED", f'["{FELONY}"]')
    monkeypatch.setenv("PRIVPLATE_QUERIES__PER_USER_PER_DAY", "1")
    for api in open_api(home):
        agreement = api.call(
            Role.ADMIN,
            "POST",
            "/sharing-agreements",
            json={
                "agency": "County Sheriff",
                "out_of_state": False,
                "declaration_signed": False,
                "document_reference": "MOU 2026-3",
                "purposes": [FELONY],
                "expires_at": (now() + timedelta(days=30)).isoformat(),
            },
        ).json()["id"]
        over_quota, revoked = file(api), file(api, agreement_id=agreement)
        for pending in (over_quota, revoked):
            assert decide(api, pending["id"], "approve").status_code == 200
        # The day's one search is used up directly; the approved one then counts as refused.
        assert api.call(Role.INVESTIGATOR, "POST", "/queries", json=query_body()).status_code == 200
        assert run(api, over_quota["id"]).status_code == 429
        revoke = api.call(Role.ADMIN, "POST", f"/sharing-agreements/{agreement}/revoke")
        assert revoke.status_code == 204
        # Quota is checked before policy: lift it by dating the direct query yesterday.
        with api.dep.db.write() as conn:
            conn.execute(update(Query).values(created_at=now() - timedelta(days=1)))
        denied = run(api, revoked["id"])
        assert denied.status_code == 403, denied.text
        with api.dep.db.read() as conn:
            outcome = dict(conn.execute(select(Query.id, Query.outcome)).all())
        for pending, expected in ((over_quota, "refused"), (revoked, "denied")):
            r = row(api, pending["id"])
            assert (r.status, r.sealed_plate, outcome[r.query_id]) == ("run", None, expected)


def test_filing_applies_every_rule_of_a_search(api: Api) -> None:
    body = query_body(PLATE, purpose=FELONY, case_number="HSI-2026-11", justification=WHY)
    refused = api.call(Role.INVESTIGATOR, "POST", "/queries", json=body)
    assert refused.status_code == 403 and "'HSI'" in refused.json()["error"]["message"]
    body = query_body(PLATE, purpose=FELONY, justification=f"Car {PLATE} seen at the robbery.")
    assert api.call(Role.INVESTIGATOR, "POST", "/queries", json=body).status_code == 403
    with api.dep.db.read() as conn:
        recorded = conn.execute(select(Query.outcome, Query.justification)).all()
        filed = conn.execute(select(SearchApproval)).all()
    assert [o for o, _ in recorded] == ["denied", "denied"] and filed == []
    no_plate_in(*(j for _, j in recorded))


# -- audit, report, command line ---------------------------------------------------------------


def test_every_step_is_audited_and_counted_in_the_report(api: Api) -> None:
    seen(api)
    ran, denied, expired = file(api), file(api), file(api)
    assert decide(api, ran["id"], "approve").status_code == 200
    assert run(api, ran["id"]).status_code == 200
    assert decide(api, denied["id"], "deny", note="No nexus.").status_code == 200
    _expire(api, expired["id"])
    purge(api.dep)
    for action, ids in (
        ("requested", {ran["id"], denied["id"], expired["id"]}),
        ("approved", {ran["id"]}),
        ("denied", {denied["id"]}),
        ("expired", {expired["id"]}),
        ("run", {ran["id"]}),
    ):
        entries = audited(api, f"search_approvals.{action}")
        assert {e["request"] for e in entries} == ids, action
        assert all(e["purpose"] == FELONY and e["case_number"] == CASE for e in entries)
    (run_entry,) = audited(api, "search_approvals.run")
    assert run_entry["query"] == str(row(api, ran["id"]).query_id)
    report = api.client.get("/transparency").json()
    counts = report["search_approvals"]
    assert {k: counts[k] for k in ("requested", "approved", "denied", "expired", "run")} == {
        "requested": 3,
        "approved": 1,
        "denied": 1,
        "expired": 1,
        "run": 1,
    }
    assert isinstance(counts["median_seconds_to_decision"], int)
    assert report["policy"]["search_rules"]["approval_required"] == [FELONY]
    assert report["searches"]["total"] == 1  # the run search, once; filings are not searches
    markdown = api.client.get("/transparency.md").text
    assert "held for a second person's approval: 3 filed; 1 approved, 1 denied, 1 expired" in (
        markdown
    )
    for text in (str(report), markdown):
        assert CASE not in text and WHY not in text
        no_plate_in(text)


runner = CliRunner()
PASSWORD = "correct horse battery staple"


def test_cli_query_waits_and_approvals_decide_and_run(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVPLATE_QUERIES__APPROVAL_REQUIRED", f'["{FELONY}"]')
    d = str(home)
    for name, role in (("ivy", "investigator"), ("cleo", "compliance")):
        added = runner.invoke(
            cli_app,
            ["users", "add", name, "--role", role, "--password-stdin", "--dir", d],
            input=PASSWORD + "\n",
        )
        assert added.exit_code == 0, added.output

    def cli(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli_app, [*args, "--password-stdin", "--dir", d], input=PASSWORD)
        return result.exit_code, result.output

    common = ("--case", CASE, "--why", WHY)
    code, out = cli("query", "--plate", PLATE, "--purpose", FELONY, *common, "--user", "ivy")
    assert code == 0 and "waiting for approval (id " in out, out
    approval_id = out.split("(id ", 1)[1].split(")", 1)[0]
    code, out = cli("approvals", "list", "--user", "cleo")
    assert code == 0 and approval_id[:8] in out and "pending" in out
    code, out = cli("approvals", "approve", approval_id, "--user", "ivy")
    assert code == 77 and "only compliance officers" in out
    code, out = cli("approvals", "approve", approval_id, "--user", "cleo", "--note", "ok")
    assert code == 0 and f"approved {approval_id}" in out
    code, out = cli("approvals", "run", approval_id, "--user", "ivy")
    assert code == 0 and "0 matching reads" in out, out
    code, out = cli("query", "--plate", OTHER, "--purpose", FELONY, *common, "--user", "ivy")
    second = out.split("(id ", 1)[1].split(")", 1)[0]
    code, out = cli("approvals", "deny", second, "--user", "cleo", "--note", "No nexus.")
    assert code == 0 and f"denied {second}" in out
    code, out = cli("approvals", "run", second, "--user", "ivy")
    assert code == 77 and "is denied" in out
    code, out = cli("approvals", "list", "--user", "ivy", "--status", "denied")
    assert code == 0 and second[:8] in out
    no_plate_in(out)


# -- the migration -----------------------------------------------------------------------------


def test_the_migration_matches_the_models(home: Path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    from privplate.deployment import Deployment
    from privplate.store.database import MIGRATIONS_DIR
    from privplate.store.models import Base

    with Deployment.open(home) as dep:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with dep.db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0012_search_reviews")
            assert "search_approvals" not in inspect(conn).get_table_names()
            command.upgrade(cfg, "head")
            conn.commit()
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    assert [d for d in diffs if "search_approvals" in repr(d)] == []


def test_a_search_run_under_approval_is_offered_to_the_spot_check_draw(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second person's approval is no way around the spot checks: the search it runs goes
    through the same draw as any other."""
    from privplate.store.review_models import SpotCheck

    monkeypatch.setattr(api.services.queries.settings, "spot_check_share", 1.0)
    seen(api)
    pending = file(api)
    assert decide(api, pending["id"], "approve", note="Nexus checked.").status_code == 200
    assert run(api, pending["id"]).status_code == 200
    with api.dep.db.read() as conn:
        (check,) = conn.execute(select(SpotCheck)).all()
    assert (check.subject_kind, check.subject_id) == ("search", row(api, pending["id"]).query_id)
    assert check.requester == f"user:{api.names[Role.INVESTIGATOR]}"


# -- races and changes of policy --------------------------------------------------------------


def _race(*calls: Callable[[], object]) -> list[object]:
    """Start every call at once, each in its own thread (its own pooled connection): what
    each returned, or the PrivplateError it raised."""
    barrier = threading.Barrier(len(calls))
    out: list[object] = [None] * len(calls)

    def go(i: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            out[i] = call()
        except PrivplateError as exc:
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _won(results: list[object]) -> int:
    return sum(not isinstance(r, Exception) for r in results)


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_decisions_and_runs_have_one_winner(api: Api, attempt: int) -> None:
    approvals = api.services.search_approvals
    investigator = _user(api, api.names[Role.INVESTIGATOR])
    officer, other = _user(api, api.names[Role.COMPLIANCE]), _user(api, CMP2)
    seen(api)
    contested = uuid.UUID(file(api)["id"])
    both = _race(
        lambda: approvals.approve(officer, contested),
        lambda: approvals.deny(other, contested, note="No nexus."),
    )
    assert _won(both) == 1
    winner = "denied" if isinstance(both[0], Exception) else "approved"
    assert row(api, str(contested)).status == winner
    twice = uuid.UUID(file(api)["id"])
    by_two = _race(
        lambda: approvals.approve(officer, twice), lambda: approvals.approve(other, twice)
    )
    assert _won(by_two) == 1
    runs = _race(*(lambda: approvals.run(investigator, twice) for _ in range(3)))
    assert _won(runs) == 1
    # A loser saw it run (or, on PostgreSQL, lost the row to the winner mid-transaction).
    lost = {str(r) for r in runs if isinstance(r, Exception)}
    assert lost <= {
        "this search is run, not approved: it cannot run",
        "this approved search already ran",
    }
    with api.dep.db.read() as conn:
        linked = conn.execute(select(Query.id).where(Query.id == row(api, str(twice)).query_id))
        assert len(linked.all()) == 1
    # A run racing the approval of a pending search never runs it unapproved.
    early = uuid.UUID(file(api)["id"])
    approved, ran = _race(
        lambda: approvals.approve(officer, early), lambda: approvals.run(investigator, early)
    )
    assert not isinstance(approved, Exception)
    assert row(api, str(early)).status == ("approved" if isinstance(ran, Exception) else "run")


def test_nobody_runs_another_investigators_approved_search(api: Api) -> None:
    pending = file(api)
    assert decide(api, pending["id"], "approve").status_code == 200
    account(api, "ivo", Role.INVESTIGATOR)
    ivo = _user(api, "ivo")
    start, end = _window(api, pending)
    # Even with every detail right (the plate included), through the one search path.
    taken = QueryRequest(
        PLATE, start, end, Purpose(FELONY), CASE, WHY, approval_id=uuid.UUID(pending["id"])
    )
    with pytest.raises(ApprovalRefused, match="yours to run"):
        api.services.queries.run(ivo, taken)
    assert row(api, pending["id"]).status == "approved"
    assert run(api, pending["id"]).status_code == 200


def test_taking_a_purpose_off_the_list_lets_new_searches_run_but_not_pending_ones(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart with the purpose off queries.approval_required: that is the deployment's
    policy from then on, so a new search for it runs at once; a request filed before keeps
    its course (it runs only once approved, and once)."""
    seen(api)
    pending, approved = file(api), file(api)
    assert decide(api, approved["id"], "approve").status_code == 200
    monkeypatch.setenv("PRIVPLATE_QUERIES__APPROVAL_REQUIRED", "[]")
    with TestClient(create_app(api.home, run_scheduler=False)) as client:
        after = Api(api.home, client, api.keys, api.device, api.names)
        still = after.call(Role.INVESTIGATOR, "POST", f"/search-approvals/{pending['id']}/run")
        assert still.status_code == 403 and "not approved" in still.text
        assert run(after, approved["id"]).status_code == 200
        assert run(after, approved["id"]).status_code == 403
        body = query_body(PLATE, purpose=FELONY, case_number=CASE, justification=WHY)
        direct = after.call(Role.INVESTIGATOR, "POST", "/queries", json=body)
        assert direct.status_code == 200 and direct.json()["matches"]
