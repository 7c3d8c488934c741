"""Limits and reviews are a person's, not an account's: a person's second investigator or
operator account is no second daily quota, a person cannot close a compliance flag about
themselves from their compliance account, and the checks that keep officers and askers apart
take one lock so that a new account and a key ceremony cannot both pass them."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from privplate.ceremony import ceremony
from privplate.ceremony.sharefile import read_share_file
from privplate.deployment import Deployment
from privplate.errors import InvalidRequest
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.store.database import Database
from tests.api_support import Api
from tests.conftest import ON_POSTGRES
from tests.test_api_policy import query_body
from tests.test_people import _key, _second_account


def _flags(api: Api, kind: str) -> list[dict[str, Any]]:
    flags = api.call(Role.COMPLIANCE, "GET", "/compliance/flags?open_only=false").json()
    return [f for f in flags if f["kind"] == kind]


def _review(api: Api, flag_id: str, headers: dict[str, str]) -> Any:
    return api.client.post(
        f"/compliance/flags/{flag_id}/review",
        json={"resolution": "Looked into it; legitimate."},
        headers=headers,
    )


def test_two_investigator_accounts_of_one_person_share_one_query_quota(api: Api) -> None:
    quota = 4
    queries = api.services.queries
    queries.settings = queries.settings.model_copy(update={"per_user_per_day": quota})
    assert _second_account(api, "investigator-1.b", Role.INVESTIGATOR).status_code == 201
    second = _key(api, "investigator-1.b")
    first = api.auth(Role.INVESTIGATOR)
    for i in range(quota):
        headers = first if i % 2 else second
        answer = api.client.post("/queries", json=query_body(), headers=headers)
        assert answer.status_code == 200, answer.text
    # Each account asked only half the quota; the person has used all of it.
    for headers in (second, first):
        answer = api.client.post("/queries", json=query_body(), headers=headers)
        assert answer.status_code == 429, answer.text
        assert "counted over all your accounts" in answer.json()["error"]["message"]
    # Someone else is not affected.
    accounts.create_user(
        db=api.dep.db,
        audit=api.dep.audit,
        actor="t",
        name="ines",
        role=Role.INVESTIGATOR,
        password=None,
    )
    other = accounts.create_api_key(db=api.dep.db, audit=api.dep.audit, actor="t", name="ines")[1]
    answer = api.client.post(
        "/queries", json=query_body(), headers={"Authorization": f"Bearer {other}"}
    )
    assert answer.status_code == 200, answer.text
    # One flag, about the person, counting both accounts' refusals and naming both accounts.
    flags = _flags(api, "query-quota")
    assert [(f["subject"], f["occurrences"]) for f in flags] == [("person:investigator-1", 2)]
    assert flags[0]["details"] == {
        "quota": quota,
        "accounts": ["investigator-1", "investigator-1.b"],
    }


def test_two_operator_accounts_of_one_person_share_one_hotlist_quota(api: Api) -> None:
    hotlists = api.services.hotlists
    hotlists.settings = hotlists.settings.model_copy(update={"entries_per_user_per_day": 3})
    answer = api.call(
        Role.ADMIN,
        "POST",
        "/users",
        json={"name": "operator-1.b", "role": "operator", "person": "operator-1"},
    )
    assert answer.status_code == 201, answer.text
    second = _key(api, "operator-1.b")
    created = api.call(
        Role.OPERATOR, "POST", "/hotlists", json={"name": "stolen", "source": "stolen-vehicle"}
    )
    assert created.status_code == 201, created.text

    def entries(*plates: str) -> dict[str, Any]:
        return {
            "entries": [
                {"plate": p, "reason": "reported stolen", "case_number": "S-1"} for p in plates
            ]
        }

    added = api.call(Role.OPERATOR, "POST", "/hotlists/stolen/entries", json=entries("1AAA111"))
    assert added.status_code == 201, added.text
    added = api.client.post(
        "/hotlists/stolen/entries", json=entries("2BBB222", "3CCC333"), headers=second
    )
    assert added.status_code == 201, added.text
    refused = api.client.post("/hotlists/stolen/entries", json=entries("4DDD444"), headers=second)
    assert refused.status_code == 429, refused.text
    message = refused.json()["error"]["message"]
    assert "you added 3 hotlist entries today, counted over all your accounts" in message
    assert "4DDD444" not in message
    flags = _flags(api, "hotlist-quota")
    assert [(f["subject"], f["occurrences"]) for f in flags] == [("person:operator-1", 1)]


def test_a_person_cannot_close_a_flag_about_themselves(api: Api) -> None:
    queries = api.services.queries
    queries.settings = queries.settings.model_copy(update={"per_user_per_day": 1})
    assert _second_account(api).status_code == 201  # investigator-1's compliance account
    own = _key(api, "investigator-1.c")
    assert api.call(Role.INVESTIGATOR, "POST", "/queries", json=query_body()).status_code == 200
    over = api.call(Role.INVESTIGATOR, "POST", "/queries", json=query_body())
    assert over.status_code == 429
    # A denied query is flagged about the account, a quota about the person: both are theirs.
    queries.settings = queries.settings.model_copy(update={"per_user_per_day": 100})
    denied = api.call(
        Role.INVESTIGATOR, "POST", "/queries", json=query_body(purpose="immigration-enforcement")
    )
    assert denied.status_code == 403, denied.text
    flags = {f["kind"]: f for f in _flags(api, "query-quota") + _flags(api, "denied-query")}
    assert flags["query-quota"]["subject"] == "person:investigator-1"
    assert flags["denied-query"]["subject"] == "investigator-1"
    for flag in flags.values():
        answer = _review(api, flag["id"], own)
        assert answer.status_code == 403, answer.text
        assert "this compliance flag is about you" in answer.json()["error"]["message"]
    refused = [
        e.entry.details
        for e in api.dep.audit.entries(action="compliance.flag_review_refused")
        if e.entry
    ]
    assert sorted(d["flag"] for d in refused) == sorted(f["id"] for f in flags.values())
    assert not list(api.dep.audit.entries(action="compliance.flag_reviewed"))
    # Another officer closes them.
    for flag in flags.values():
        answer = _review(api, flag["id"], api.auth(Role.COMPLIANCE))
        assert answer.status_code == 200, answer.text
        assert answer.json()["reviewed_by"] == "user:compliance-1"
    assert _flags(api, "query-quota")[0]["reviewed_at"] is not None


def test_a_person_cannot_close_a_hotlist_flag_about_their_operator_account(api: Api) -> None:
    hotlists = api.services.hotlists
    hotlists.settings = hotlists.settings.model_copy(update={"entries_per_user_per_day": 1})
    answer = api.call(
        Role.ADMIN,
        "POST",
        "/users",
        json={"name": "operator-1.c", "role": "compliance", "person": "operator-1"},
    )
    assert answer.status_code == 201, answer.text
    own = _key(api, "operator-1.c")
    api.call(
        Role.OPERATOR, "POST", "/hotlists", json={"name": "stolen", "source": "stolen-vehicle"}
    )
    body = {
        "entries": [
            {"plate": p, "reason": "reported stolen", "case_number": "S-1"}
            for p in ("1AAA111", "2BBB222")
        ]
    }
    assert api.call(Role.OPERATOR, "POST", "/hotlists/stolen/entries", json=body).status_code == 429
    (flag,) = _flags(api, "hotlist-quota")
    answer = _review(api, flag["id"], own)
    assert answer.status_code == 403 and "about you" in answer.json()["error"]["message"]
    assert _review(api, flag["id"], api.auth(Role.COMPLIANCE)).status_code == 200


# -- officers and askers: one lock for both checks -------------------------------------------


def _spy(monkeypatch: pytest.MonkeyPatch, db: Database, events: list[str]) -> None:
    """Record, in order, the locks taken and the people checks run."""
    lock = db.lock_subject

    def lock_subject(conn: Any, name: str) -> None:
        events.append(f"lock {name}")
        lock(conn, name)

    monkeypatch.setattr(db, "lock_subject", lock_subject)
    for module, name in ((accounts, "_check_person"), (ceremony, "_check_officers")):
        check = getattr(module, name)

        def checked(*args: Any, _check: Any = check, _name: str = name) -> Any:
            events.append(_name)
            return _check(*args)

        monkeypatch.setattr(module, name, checked)


def test_new_accounts_and_ceremonies_check_people_under_one_lock(
    dep: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    _spy(monkeypatch, dep.db, events)
    for name in ("cleo", "omar", "nadia"):
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="t", name=name, role=Role.COMPLIANCE, password=None
        )
    assert events == ["lock people", "_check_person"] * 3
    events.clear()
    result = ceremony.hold_ceremony(
        dep,
        officers=[(n, f"passphrase of {n}") for n in ("cleo", "omar")],
        threshold=2,
        out_dir=tmp_path / "shares",
        strength="interactive",
    )
    # A first look before dealing, then again in the transaction that records the shares.
    assert events == ["_check_officers", "lock people", "_check_officers"]
    events.clear()
    old = [(read_share_file(path), f"passphrase of {name}") for name, path in result.files.items()]
    ceremony.reshare(
        dep,
        old_shares=old,
        officers=[(n, f"passphrase of {n}") for n in ("omar", "nadia")],
        threshold=2,
        out_dir=tmp_path / "reshared",
        strength="interactive",
    )
    assert events[-2:] == ["lock people", "_check_officers"]


@pytest.mark.skipif(not ON_POSTGRES, reason="READ COMMITTED write skew is PostgreSQL's")
def test_an_investigator_account_and_a_share_cannot_both_pass_at_once(
    dep: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new account has passed its check (cleo holds no share yet) and waits; meanwhile the
    ceremony deals cleo a share. With the lock the ceremony waits, then sees the account."""
    for name in ("cleo", "omar"):
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="t", name=name, role=Role.COMPLIANCE, password=None
        )
    checked, go = threading.Event(), threading.Event()
    check = accounts._check_person

    def paused(*args: Any) -> Any:
        result = check(*args)
        checked.set()
        assert go.wait(60)
        return result

    monkeypatch.setattr(accounts, "_check_person", paused)
    outcome: dict[str, BaseException | None] = {}

    def run(what: str, job: Any) -> threading.Thread:
        def target() -> None:
            try:
                job()
                outcome[what] = None
            except BaseException as exc:
                outcome[what] = exc

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    account = run(
        "account",
        lambda: accounts.create_user(
            db=dep.db,
            audit=dep.audit,
            actor="t",
            name="cleo.i",
            role=Role.INVESTIGATOR,
            password=None,
            person="cleo",
        ),
    )
    assert checked.wait(60)
    ceremony_thread = run(
        "ceremony",
        lambda: ceremony.hold_ceremony(
            dep,
            officers=[(n, f"passphrase of {n}") for n in ("cleo", "omar")],
            threshold=2,
            out_dir=tmp_path / "shares",
            strength="interactive",
        ),
    )
    # Let the account go on once the ceremony has finished (no lock) or waits for the lock.
    digest = hashlib.blake2b(
        accounts.PEOPLE_LOCK.encode(), digest_size=8, person=b"privplate-lock"
    ).digest()  # the key Database.lock_subject takes
    key = int.from_bytes(digest, "big")
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid = :hi AND objid = :lo AND objsubid = 1"
    )
    params = {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}
    with dep.db.engine.connect() as conn:
        while ceremony_thread.is_alive() and not conn.execute(waiting, params).scalar_one():
            conn.rollback()
            ceremony_thread.join(0.01)
    go.set()
    account.join(60)
    ceremony_thread.join(60)
    assert outcome["account"] is None
    assert isinstance(outcome["ceremony"], InvalidRequest), outcome["ceremony"]
    assert "also has the investigator account 'cleo.i'" in str(outcome["ceremony"])
