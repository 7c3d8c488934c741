"""People, not accounts: one person with an investigator and a compliance account cannot approve
their own requests or holds, by the API or the CLI, and cannot be made an officer; a second
account is audited and the transparency report counts people per role."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy import text
from typer.testing import CliRunner

from privplate.api import create_app
from privplate.ceremony.ceremony import hold_ceremony, reshare
from privplate.ceremony.sharefile import read_share_file
from privplate.cli.main import app as cli
from privplate.deployment import Deployment
from privplate.errors import InvalidRequest
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.store import EvidenceIn
from tests import factories
from tests.api_support import CAMERA, Api, now
from tests.test_api_alerts import _free_port
from tests.test_api_policy import query_body
from tests.unseal_support import CROP, FRAME, PASSPHRASE, setup_unseal

runner = CliRunner()
SECOND = "investigator-1.c"  # the investigator's own compliance account


def _second_account(api: Api, name: str = SECOND, role: Role = Role.COMPLIANCE) -> Any:
    return api.call(
        Role.ADMIN,
        "POST",
        "/users",
        json={"name": name, "role": role.value, "person": "investigator-1"},
    )


def _key(api: Api, name: str) -> dict[str, str]:
    answer = api.call(Role.ADMIN, "POST", f"/users/{name}/api-keys", json={})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['key']}"}


def _message(answer: Any) -> str:
    return str(answer.json()["error"]["message"])


def test_a_second_account_is_declared_audited_and_listed(api: Api) -> None:
    answer = _second_account(api)
    assert answer.status_code == 201, answer.text
    assert answer.json()["person"] == "investigator-1" and answer.json()["role"] == "compliance"
    new = api.call(Role.ADMIN, "POST", "/users", json={"name": "nadia", "role": "auditor"})
    assert new.status_code == 201 and new.json()["person"] == "nadia"
    second = [
        e.entry.details for e in api.dep.audit.entries(action="users.second_account") if e.entry
    ]
    assert second == [
        {
            "user": SECOND,
            "role": "compliance",
            "person": "investigator-1",
            "other_accounts": {"investigator-1": "investigator"},
        }
    ]
    created = {
        e.entry.details["user"]: e.entry.details["person"]
        for e in api.dep.audit.entries(action="users.created")
        if e.entry
    }
    assert created[SECOND] == "investigator-1" and created["nadia"] == "nadia"
    unknown = api.call(
        Role.ADMIN, "POST", "/users", json={"name": "x", "role": "auditor", "person": "nobody"}
    )
    assert unknown.status_code == 404 and "no person 'nobody'" in _message(unknown)
    listed = {u["name"]: u["person"] for u in api.call(Role.ADMIN, "GET", "/users").json()}
    assert listed[SECOND] == listed["investigator-1"] == "investigator-1"


def test_the_requesters_own_compliance_account_cannot_approve(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    assert _second_account(api).status_code == 201
    own = _key(api, SECOND)
    request = u.file()  # filed by investigator-1
    # With an officer's share (stolen, or lent): refused because it is the requester.
    body = u.partial("compliance-1", request)
    answer = api.client.post(f"/unseal/requests/{request['id']}/approvals", json=body, headers=own)
    assert answer.status_code == 403
    assert "cannot approve their own request" in _message(answer)
    refused = [e.entry.details for e in api.dep.audit.entries(action="unseal.refused") if e.entry]
    assert "their own request" in str(refused[-1]["reason"])
    # The same share from its own officer counts: the refusal was about the person.
    assert u.approve("compliance-1", request, body).json()["approvals"] == 1


def test_the_person_cannot_be_made_an_officer(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    assert _second_account(api).status_code == 201
    old = [(u.shares[n], PASSPHRASE.format(n)) for n in ("compliance-1", "compliance-2")]
    with pytest.raises(InvalidRequest, match="also has the investigator account"):
        hold_ceremony(
            api.dep,
            officers=[(n, "a long passphrase") for n in ("compliance-1", SECOND)],
            threshold=2,
            out_dir=tmp_path / "rotation",
            strength="interactive",
        )
    with pytest.raises(InvalidRequest, match="also has the investigator account"):
        reshare(
            api.dep,
            old_shares=old,
            officers=[(n, "a long passphrase") for n in ("compliance-2", SECOND)],
            threshold=2,
            out_dir=tmp_path / "reshare",
            strength="interactive",
        )
    assert not (tmp_path / "reshare").exists() and not (tmp_path / "rotation").exists()
    # The other way round: an officer gets no investigator or operator account.
    for role in (Role.INVESTIGATOR, Role.OPERATOR):
        answer = api.call(
            Role.ADMIN,
            "POST",
            "/users",
            json={
                "name": f"compliance-1.{role.value}",
                "role": role.value,
                "person": "compliance-1",
            },
        )
        assert answer.status_code == 409, answer.text
        assert "holds a share of the evidence key" in _message(answer)
    auditor = {"name": "compliance-1.a", "role": "auditor", "person": "compliance-1"}
    assert api.call(Role.ADMIN, "POST", "/users", json=auditor).status_code == 201


def test_two_accounts_of_one_person_get_one_share_and_count_once(
    home: Path, tmp_path: Path
) -> None:
    with Deployment.open(home) as dep:
        for name, person in [("cleo", None), ("cleo.2", "cleo"), ("omar", None)]:
            accounts.create_user(
                db=dep.db,
                audit=dep.audit,
                actor="t",
                name=name,
                role=Role.COMPLIANCE,
                password=None,
                person=person,
            )
        with pytest.raises(
            InvalidRequest, match=r"'cleo' and 'cleo\.2' are accounts of one person"
        ):
            hold_ceremony(
                dep,
                officers=[(n, "a long passphrase") for n in ("cleo", "cleo.2", "omar")],
                threshold=2,
                out_dir=tmp_path / "shares",
                strength="interactive",
            )


def test_an_officer_counts_once_even_if_people_are_merged_later(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    request = u.file()
    assert u.approve("compliance-1", request).status_code == 200
    # Found out afterwards: compliance-2 is the same person (an administrator records it).
    with api.dep.db.write() as conn:
        conn.execute(text("UPDATE users SET person = 'compliance-1' WHERE name = 'compliance-2'"))
    answer = u.approve("compliance-2", request)
    assert answer.status_code == 403 and "one person counts once" in _message(answer)
    assert u.approve("compliance-3", request).json()["status"] == "released"


def test_hold_approval_by_the_requesters_other_account_is_refused(api: Api) -> None:
    read = factories.read(api.dep, "7ABC123", camera_id=CAMERA, observed_at=now())
    assert api.ingest([read]).status_code == 200
    assert _second_account(api).status_code == 201
    own = _key(api, SECOND)
    body = {
        "kind": "read",
        "target_id": str(read.read_id),
        "case_number": "SPD-2026-7",
        "justification": "Evidence in a pending hit-and-run prosecution.",
    }
    hold = api.call(Role.INVESTIGATOR, "POST", "/holds", json=body)
    assert hold.status_code == 201, hold.text
    path = f"/holds/{hold.json()['id']}/approve"
    answer = api.client.post(path, headers=own)
    assert answer.status_code == 403 and "from any of their accounts" in _message(answer)
    assert not list(api.dep.audit.entries(action="hold.approved"))
    approved = api.call(Role.COMPLIANCE, "POST", path)
    assert approved.status_code == 200 and approved.json()["approved_by"] == "user:compliance-1"


def test_the_report_counts_people_per_role(api: Api) -> None:
    assert _second_account(api).status_code == 201
    assert _second_account(api, "investigator-1.b", Role.INVESTIGATOR).status_code == 201
    other = _key(api, "investigator-1.b")
    assert api.call(Role.INVESTIGATOR, "POST", "/queries", json=query_body()).status_code == 200
    assert api.client.post("/queries", json=query_body(), headers=other).status_code == 200
    report = api.client.get("/transparency").json()
    access = report["access"]
    assert access["accounts_by_role"]["investigator"] == 2
    assert access["accounts_by_role"]["compliance"] == 2
    assert access["people_by_role"] == {
        "admin": 1,
        "auditor": 1,
        "compliance": 2,
        "investigator": 1,
        "operator": 1,
    }
    assert access["people_with_accounts"] == 5
    assert access["people_with_more_than_one_account"] == 1
    assert report["oversight"]["second_accounts_created"] == 2
    assert report["searches"]["people_who_searched"] == 1  # two accounts, one person
    markdown = api.client.get("/transparency.md").text
    assert "People with accounts: 5 (1 admin, 1 auditor, 2 compliance, 1 investigator" in markdown
    assert "1 of them hold more than one account (2 such accounts added" in markdown
    for name in ("investigator-1", SECOND):
        assert name not in markdown and name not in str(report)


# -- the command line ----------------------------------------------------------------------


def _cli(*args: str, stdin: str = "", ok: bool = True) -> str:
    result = runner.invoke(cli, list(args), input=stdin)
    assert (result.exit_code == 0) is ok, result.output
    return result.output


@pytest.fixture
def live(home: Path) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(home, run_scheduler=False), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_cli_the_person_cannot_approve_their_own_request_or_become_an_officer(
    home: Path, tmp_path: Path, live: str
) -> None:
    from privplate.sealing import seal
    from privplate.sealing.layout import pack_evidence

    password = "a long account password"
    d = str(home)
    for name, role in [("ivy", "investigator"), ("cleo", "compliance"), ("omar", "compliance")]:
        _cli("users", "add", name, "--role", role, "--password-stdin", "--dir", d, stdin=password)
    out = _cli(
        "users", "add", "ivy.c", "--role", "compliance", "--person", "ivy", "--password-stdin",
        "--dir", d, stdin=password,
    )  # fmt: skip
    assert "another account of person ivy" in out
    assert "ivy.c" in _cli("users", "list", "--dir", d)
    shares = tmp_path / "shares"
    stdin = "".join(f"passphrase of {n} here\n" for n in ("cleo", "ivy.c"))
    out = _cli(
        "keys", "ceremony", "--officers", "cleo,ivy.c", "--threshold", "2", "--out", str(shares),
        "--secrets-stdin", "--dir", d, stdin=stdin, ok=False,
    )  # fmt: skip
    assert "also has the investigator account 'ivy'" in " ".join(out.split())
    stdin = "".join(f"passphrase of {n} here\n" for n in ("cleo", "omar"))
    _cli(
        "keys", "ceremony", "--officers", "cleo,omar", "--threshold", "2", "--out", str(shares),
        "--secrets-stdin", "--dir", d, stdin=stdin,
    )  # fmt: skip
    out = _cli(
        "users", "add", "cleo.i", "--role", "investigator", "--person", "cleo", "--no-password",
        "--dir", d, ok=False,
    )  # fmt: skip
    assert "holds a share of the evidence key" in " ".join(out.split())

    with Deployment.open(home) as dep:
        dep.add_camera(CAMERA)
        public_key = read_share_file(shares / "cleo.share").public_key
        evidence_id = uuid.uuid4()
        read = factories.read(dep, "7ABC123", camera_id=CAMERA, evidence_id=evidence_id)
        sealed = seal(pack_evidence(CROP, FRAME), public_key, evidence_id=evidence_id)
        factories.ingest(dep, [read], [EvidenceIn(evidence_id, CAMERA, read.observed_at, sealed)])
    out = _cli(
        "unseal", "request", str(evidence_id), "--case", "SPD-2026-9", "--why",
        "Hit-and-run; the image identifies the vehicle for the report.", "--user", "ivy",
        "--server", live, "--secrets-stdin", stdin=f"{password}\n",
    )  # fmt: skip
    request_id = out.split()[2]
    # ivy signs in with her compliance account and cleo's share (lent or stolen): refused.
    out = _cli(
        "officer", "approve", request_id, "--share", str(shares / "cleo.share"), "--user",
        "ivy.c", "--server", live, "--yes", "--secrets-stdin",
        stdin=f"{password}\npassphrase of cleo here\n", ok=False,
    )  # fmt: skip
    assert "cannot approve their own request" in " ".join(out.split())
    out = _cli(
        "officer", "approve", request_id, "--share", str(shares / "cleo.share"), "--user",
        "cleo", "--server", live, "--yes", "--secrets-stdin",
        stdin=f"{password}\npassphrase of cleo here\n",
    )  # fmt: skip
    assert "(1 approvals)" in out


# -- the migration -------------------------------------------------------------------------


def test_the_migration_makes_each_existing_account_its_own_person(home: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from privplate.store.database import MIGRATIONS_DIR
    from privplate.store.types import UTCDateTime

    with Deployment.open(home) as dep:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        before = ScriptDirectory.from_config(cfg).get_revision("0009_people").down_revision
        assert isinstance(before, str)
        with dep.db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, before)
            old_users = sa.table(
                "users",
                *(sa.column(c) for c in ("name", "role", "agency", "created_by")),
                sa.column("id", sa.Uuid()),
                sa.column("created_at", UTCDateTime()),
            )
            conn.execute(
                sa.insert(old_users),
                [
                    {
                        "id": uuid.uuid4(),
                        "name": n,
                        "role": r,
                        "agency": "",
                        "created_by": "t",
                        "created_at": now(),
                    }
                    for n, r in (("ann", "investigator"), ("ben", "compliance"))
                ],
            )
            command.upgrade(cfg, "0009_people")
            conn.commit()
        people = {u.name: u.person for u in accounts.list_users(db=dep.db)}
    assert people == {"ann": "ann", "ben": "ben"}
