"""Refusals: each one answers with a clear message, is audited, and writes nothing else."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from privplate.devices import DeviceKey
from privplate.identity.roles import Role
from privplate.store.models import AuditEntry
from privplate.store.server_models import HotlistEntry
from tests import factories
from tests.api_support import CAMERA, Api, now

DATA_TABLES = ("reads", "evidence", "alerts", "hotlist_entries", "hotlist_tokens", "device_batches")


def counts(api: Api) -> dict[str, int]:
    with api.dep.db.read() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in (*DATA_TABLES, "queries", "compliance_flags")
        }


def audited(api: Api, action: str) -> list[dict[str, Any]]:
    return [e.entry.details for e in api.dep.audit.entries(action=action) if e.entry is not None]


def _json(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/json"}


def query_body(plate: str = "7ABC123", **overrides: Any) -> dict[str, Any]:
    body = {
        "plate": plate,
        "start": (now() - timedelta(days=2)).isoformat(),
        "end": (now() + timedelta(minutes=1)).isoformat(),
        "purpose": "stolen-vehicle",
        "case_number": "SPD-2026-0042",
        "justification": "Vehicle reported stolen from the Elm Street lot last night.",
    }
    body.update(overrides)
    return body


def ask(api: Api, **overrides: Any) -> Any:
    return api.call(Role.INVESTIGATOR, "POST", "/queries", json=query_body(**overrides))


def assert_refused(answer: Any, status: int, kind: str, words: str) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["type"] == kind
    assert words in error["message"]


# -- queries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"purpose": "immigration-enforcement"}, "forbidden"),
        ({"purpose": "civil-or-parking"}, "not among this deployment's allowed purposes"),
        ({"justification": "Assisting ICE ERO with a removal order for the driver."}, "'ICE'"),
        ({"justification": "Subject may be deportable; locate the vehicle quickly."}, "deport"),
        ({"case_number": "HSI-2026-11"}, "'HSI'"),
        ({"case_number": "   "}, "case number is required"),
        ({"justification": "too short"}, "justification of at least"),
        ({"end": (now() - timedelta(days=3)).isoformat()}, "ends before it starts"),
        ({"start": (now() - timedelta(days=90)).isoformat()}, "longer than 31 days"),
        ({"agreement_id": str(uuid.uuid4())}, "no sharing agreement"),
        ({"plate": "7ABC*"}, "wildcard"),
    ],
)
def test_query_refusals(api: Api, overrides: dict[str, Any], words: str) -> None:
    before = counts(api)
    answer = ask(api, **overrides)
    status = 400 if "plate" in overrides else 403
    assert_refused(answer, status, answer.json()["error"]["type"], words)
    after = counts(api)
    for table in DATA_TABLES:
        assert after[table] == before[table], table
    # The refusal is on the record (without the plate) and flagged to compliance.
    assert after["queries"] == before["queries"] + 1
    assert after["compliance_flags"] >= 1
    denied = audited(api, "queries.denied")
    assert (denied and words.strip("'") in denied[-1]["reason"]) or words in denied[-1]["reason"]
    flags = api.call(Role.COMPLIANCE, "GET", "/compliance/flags").json()
    assert any(f["kind"] == "denied-query" for f in flags)


def test_police_and_office_are_not_ice(api: Api) -> None:
    answer = ask(api, justification="Police office report: vehicle stolen, owner statement taken.")
    assert answer.status_code == 200, answer.text


def test_justification_with_the_plate_is_refused_and_not_stored(api: Api) -> None:
    answer = ask(api, plate="7ABC123", justification="Looking for 7ABC 123 seen near the mall.")
    assert_refused(answer, 403, "purpose_denied", "must not contain the plate")
    with api.dep.db.read() as conn:
        stored = conn.execute(text("SELECT justification FROM queries")).scalars().all()
    assert stored == ["(withheld: it contained the queried plate)"]


def test_illinois_forbids_reproductive_care_investigations(home: Any, monkeypatch: Any) -> None:
    from tests.api_support import open_api

    monkeypatch.setenv("PRIVPLATE_RETENTION__PRESET", "illinois")
    for api in open_api(home):
        answer = ask(api, purpose="reproductive-health-care-investigation")
        assert_refused(answer, 403, "purpose_denied", "forbidden")
        answer = ask(api, justification="Patient travelled for an abortion; find the car.")
        assert_refused(answer, 403, "purpose_denied", "abortion")


def test_out_of_state_sharing_needs_a_signed_declaration_under_illinois(
    home: Any, monkeypatch: Any
) -> None:
    from tests.api_support import open_api

    monkeypatch.setenv("PRIVPLATE_RETENTION__PRESET", "illinois")
    for api in open_api(home):
        body = {
            "agency": "Out-of-state sheriff",
            "out_of_state": True,
            "declaration_signed": False,
            "document_reference": "letter 2026-7",
            "purposes": ["stolen-vehicle"],
            "expires_at": (now() + timedelta(days=30)).isoformat(),
        }
        answer = api.call(Role.ADMIN, "POST", "/sharing-agreements", json=body)
        assert_refused(answer, 403, "purpose_denied", "signed declaration")
        body["declaration_signed"] = True
        created = api.call(Role.ADMIN, "POST", "/sharing-agreements", json=body)
        assert created.status_code == 201, created.text
        agreement = created.json()["id"]
        assert ask(api, agreement_id=agreement).status_code == 200
        answer = ask(api, agreement_id=agreement, purpose="violent-felony")
        assert_refused(answer, 403, "purpose_denied", "does not cover")


def test_query_quota(api: Api) -> None:
    for i in range(25):
        assert ask(api, plate=f"Q{i:04d}").status_code == 200
    before = counts(api)
    answer = ask(api, plate="Q9999")
    assert_refused(answer, 429, "quota_exceeded", "25 queries")
    assert counts(api)["queries"] == before["queries"] + 1  # recorded as refused
    assert audited(api, "queries.refused")
    flags = api.call(Role.COMPLIANCE, "GET", "/compliance/flags").json()
    assert [f["kind"] for f in flags] == ["query-quota"]


def test_answers_have_the_same_shape_with_and_without_matches(api: Api) -> None:
    factories.ingest(api.dep, [factories.read(api.dep, "7ABC123", camera_id=CAMERA)])
    hit = ask(api, plate="7ABC123").json()
    miss = ask(api, plate="8XYZ999").json()
    assert set(hit) == set(miss) == {"query_id", "start", "end", "matches"}
    assert len(hit["matches"]) == 1 and miss["matches"] == []
    assert set(hit["matches"][0]) == {
        "read_id",
        "camera_id",
        "observed_at",
        "confidence",
        "evidence_id",
        "via_alternate",
    }


# -- sign-in -----------------------------------------------------------------------------------


def test_unknown_user_and_wrong_password_answer_alike(api: Api) -> None:
    from privplate.identity import accounts

    accounts.create_user(
        db=api.dep.db,
        audit=api.dep.audit,
        actor="test",
        name="dana",
        role=Role.INVESTIGATOR,
        password="a long enough passphrase",
    )
    wrong = api.client.post("/sessions", json={"name": "dana", "password": "not the password"})
    unknown = api.client.post("/sessions", json={"name": "nobody", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    ok = api.client.post("/sessions", json={"name": "dana", "password": "a long enough passphrase"})
    assert ok.status_code == 201
    token = ok.json()["token"]
    me = api.client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "dana"
    bearer = {"Authorization": f"Bearer {token}"}
    assert api.client.delete("/sessions/current", headers=bearer).status_code == 204
    assert api.client.get("/me", headers=bearer).status_code == 401


# -- hotlists ----------------------------------------------------------------------------------


def _hotlist(api: Api, name: str = "stolen", max_entries: int | None = None) -> None:
    body: dict[str, Any] = {"name": name, "source": "stolen-vehicle"}
    if max_entries:
        body["max_entries"] = max_entries
    assert api.call(Role.OPERATOR, "POST", "/hotlists", json=body).status_code == 201


def _entries(api: Api, name: str, plates: list[str], **extra: Any) -> Any:
    entries = [{"plate": p, "reason": "stolen", "case_number": "SPD-1", **extra} for p in plates]
    return api.call(Role.OPERATOR, "POST", f"/hotlists/{name}/entries", json={"entries": entries})


def test_expired_hotlist_entry_is_refused_and_never_alerts(api: Api) -> None:
    _hotlist(api)
    before = counts(api)
    past = (now() - timedelta(hours=1)).isoformat()
    answer = _entries(api, "stolen", ["1ABC234"], expires_at=past)
    assert_refused(answer, 400, "invalid_request", "in the past")
    assert counts(api)["hotlist_entries"] == before["hotlist_entries"]
    assert audited(api, "hotlists.entries_refused")
    # An entry that has since expired matches nothing.
    assert _entries(api, "stolen", ["1ABC234"]).status_code == 201
    with api.dep.db.write() as conn:
        conn.execute(update(HotlistEntry.__table__).values(expires_at=now() - timedelta(seconds=1)))
    answer = api.ingest([factories.read(api.dep, "1ABC234", camera_id=CAMERA)])
    assert answer.status_code == 200, answer.text
    assert answer.json()["alerts"] == []


def test_oversized_hotlist_is_refused(api: Api) -> None:
    _hotlist(api, "small", max_entries=3)
    before = counts(api)
    answer = _entries(api, "small", ["1AAA111", "2BBB222", "3CCC333", "4DDD444"])
    assert_refused(answer, 429, "quota_exceeded", "cap of 3")
    assert counts(api)["hotlist_entries"] == before["hotlist_entries"]
    assert counts(api)["hotlist_tokens"] == before["hotlist_tokens"]
    assert audited(api, "hotlists.entries_refused")
    flags = api.call(Role.COMPLIANCE, "GET", "/compliance/flags").json()
    assert [f["kind"] for f in flags] == ["hotlist-quota"]


def test_deployment_wide_hotlist_cap(home: Any, monkeypatch: Any) -> None:
    from tests.api_support import open_api

    monkeypatch.setenv("PRIVPLATE_HOTLISTS__MAX_ENTRIES_TOTAL", "2")
    for api in open_api(home):
        _hotlist(api, "a")
        _hotlist(api, "b")
        assert _entries(api, "a", ["1AAA111"]).status_code == 201
        assert _entries(api, "b", ["2BBB222"]).status_code == 201
        answer = _entries(api, "b", ["3CCC333"])
        assert_refused(answer, 429, "quota_exceeded", "hotlists.max_entries_total")


def test_hotlist_reason_with_a_forbidden_purpose_is_refused(api: Api) -> None:
    _hotlist(api)
    answer = _entries(api, "stolen", ["1ABC234"], reason="ICE detainer target")
    assert_refused(answer, 403, "purpose_denied", "'ICE'")
    assert counts(api)["hotlist_entries"] == 0


def test_csv_import_and_its_errors(api: Api) -> None:
    _hotlist(api)
    good = "plate,reason,case_number\n1ABC234,stolen,SPD-1\n5XYZ678,stolen,SPD-2\n"
    answer = api.call(
        Role.OPERATOR,
        "POST",
        "/hotlists/stolen/import",
        content=good,
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 201, answer.text
    assert len(answer.json()) == 2
    bad = "plate,reason\n9QQQ999,stolen\n"
    answer = api.call(
        Role.OPERATOR,
        "POST",
        "/hotlists/stolen/import",
        content=bad,
        headers={"Content-Type": "text/csv"},
    )
    assert_refused(answer, 400, "invalid_request", "case_number")
    assert "9QQQ999" not in answer.text
    duplicate = "plate,reason,case_number\n1ABC 234,stolen again,SPD-3\n"
    answer = api.call(
        Role.OPERATOR,
        "POST",
        "/hotlists/stolen/import",
        content=duplicate,
        headers={"Content-Type": "text/csv"},
    )
    assert_refused(answer, 409, "already_exists", "already live entries")


# -- devices and ingest ------------------------------------------------------------------------


def test_unknown_device_is_refused(api: Api) -> None:
    before = counts(api)
    stranger = DeviceKey.generate("edge-9")
    body = api.batch_body([factories.read(api.dep, "1ABC234", camera_id=CAMERA)])
    answer = api.signed("POST", "/ingest", body, key=stranger)
    assert_refused(answer, 401, "device_rejected", "unknown or revoked device")
    assert counts(api) == before
    assert audited(api, "devices.request_refused")


def test_replayed_request_is_refused_but_a_fresh_retry_is_idempotent(api: Api) -> None:
    body = api.batch_body([factories.read(api.dep, "1ABC234", camera_id=CAMERA)])
    headers = api.device.sign_request("POST", "/ingest", body)
    first = api.client.post("/ingest", content=body, headers=_json(headers))
    assert first.status_code == 200 and first.json()["inserted"] == 1
    before = counts(api)
    replay = api.client.post("/ingest", content=body, headers=_json(headers))
    assert_refused(replay, 401, "device_rejected", "replay")
    assert counts(api) == before
    retry = api.signed("POST", "/ingest", body)  # same bytes, fresh signature: a retry
    assert retry.status_code == 200
    assert retry.json()["replayed"] is True and retry.json()["inserted"] == 0
    assert counts(api) == before


def test_tampered_batch_is_refused(api: Api) -> None:
    before = counts(api)
    body = api.batch_body([factories.read(api.dep, "1ABC234", camera_id=CAMERA, confidence=0.5)])
    headers = api.device.sign_request("POST", "/ingest", body)
    tampered = body.replace(b'"confidence": 0.5', b'"confidence": 0.9')
    assert tampered != body
    answer = api.client.post("/ingest", content=tampered, headers=_json(headers))
    assert_refused(answer, 401, "device_rejected", "does not match")
    assert counts(api) == before
    assert audited(api, "devices.request_refused")


def test_batch_id_reused_with_other_content_is_refused(api: Api) -> None:
    batch_id = uuid.uuid4()
    first = api.batch_body([factories.read(api.dep, "1ABC234", camera_id=CAMERA)], batch_id)
    assert api.signed("POST", "/ingest", first).status_code == 200
    before = counts(api)
    other = api.batch_body([factories.read(api.dep, "5XYZ678", camera_id=CAMERA)], batch_id)
    answer = api.signed("POST", "/ingest", other)
    assert_refused(answer, 409, "conflict", "different content")
    assert counts(api) == before
    assert audited(api, "ingest.refused")


def test_stale_and_foreign_camera_requests_are_refused(api: Api) -> None:
    body = api.batch_body([factories.read(api.dep, "1ABC234", camera_id=CAMERA)])
    old = api.device.sign_request("POST", "/ingest", body, now=now().timestamp() - 3600)
    answer = api.client.post("/ingest", content=body, headers=_json(old))
    assert_refused(answer, 401, "device_rejected", "check the device clock")
    api.dep.add_camera("gate-2")
    foreign = api.batch_body([factories.read(api.dep, "1ABC234", camera_id="gate-2")])
    answer = api.signed("POST", "/ingest", foreign)
    assert_refused(answer, 403, "device_not_allowed", "may not report for camera")
    assert counts(api)["reads"] == 0


def test_malformed_and_oversize_requests(api: Api, monkeypatch: Any) -> None:
    answer = api.signed("POST", "/ingest", b'{"batch_id": "nope", "reads": "x"}')
    assert answer.status_code == 422
    assert "nope" not in answer.text
    big = b"{" + b" " * (65 * 1024 * 1024) + b"}"
    answer = api.client.post("/ingest", content=big, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["error"]["type"] == "request_too_large"


def test_device_gets_its_epoch_key_and_hotlist_tokens(api: Api) -> None:
    import base64

    from privplate.tokens import plate_token

    _hotlist(api)
    assert _entries(api, "stolen", ["1ABC234"]).status_code == 201
    answer = api.signed("GET", "/device/epoch")
    assert answer.status_code == 200, answer.text
    epoch = answer.json()
    key = api.device.open_sealed_key(base64.b64decode(epoch["sealed_key"]))
    assert key == api.dep.keyring.current_key().key
    answer = api.signed("GET", f"/device/hotlist-tokens?epoch_id={epoch['epoch_id']}")
    tokens = answer.json()["tokens"]
    assert tokens == [{"token": plate_token(key, "1ABC234").hex(), "hotlist": "stolen"}]
    assert json.dumps(answer.json()).find("1ABC234") == -1


def test_counts_helper_sees_writes(api: Api) -> None:
    before = counts(api)
    factories.ingest(api.dep, [factories.read(api.dep, "1ABC234", camera_id=CAMERA)])
    assert counts(api)["reads"] == before["reads"] + 1
    with api.dep.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(AuditEntry.__table__)).scalar_one() > 0


def test_search_review_filters_by_purpose_in_the_database(api: Api) -> None:
    for purpose in ("stolen-vehicle", "amber-alert", "amber-alert"):
        assert ask(api, purpose=purpose).status_code == 200
    assert ask(api, purpose="immigration-enforcement").status_code == 403
    every = api.call(Role.COMPLIANCE, "GET", "/compliance/queries").json()
    amber = api.call(Role.COMPLIANCE, "GET", "/compliance/queries?purpose=amber-alert").json()
    assert len(every) == 4
    assert [q["purpose"] for q in amber] == ["amber-alert", "amber-alert"]
    refused = api.call(
        Role.AUDITOR, "GET", "/compliance/queries?purpose=immigration-enforcement&outcome=denied"
    ).json()
    assert len(refused) == 1


def test_revealing_one_entry_audits_that_entry_only(api: Api) -> None:
    from privplate.errors import NotFound
    from privplate.hotlists import EntryIn
    from privplate.hotlists.sources import HotlistSource

    hotlists = api.services.hotlists
    hotlists.create(actor="test", name="one-reveal", source=HotlistSource.STOLEN_VEHICLE)
    added = hotlists.add_entries(
        actor="test",
        hotlist="one-reveal",
        entries=[EntryIn("5REV001", "stolen", "C-1"), EntryIn("5REV002", "stolen", "C-2")],
    )
    shown = hotlists.reveal_entry(actor="user:x", hotlist="one-reveal", entry_id=added[1].id)
    assert shown.plate == "5REV002"
    [record] = [e.entry for e in api.dep.audit.entries(action="hotlists.entry_revealed")]
    assert record is not None
    assert record.details == {"hotlist": "one-reveal", "entry": str(added[1].id)}
    hotlists.remove_entry(actor="test", hotlist="one-reveal", entry_id=added[0].id)
    with pytest.raises(NotFound):
        hotlists.reveal_entry(actor="user:x", hotlist="one-reveal", entry_id=added[0].id)
