"""One open request per item, without telling strangers about it: a second filing names the open
request only to the person who filed it, and the requester can withdraw a pending request
(by the API or the CLI), which ends it and erases its partials, on the record."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select
from typer.testing import CliRunner

from privplate.api import create_app
from privplate.cli.main import app as cli
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.store.unseal_models import UnsealApproval
from tests.api_support import Api
from tests.test_api_alerts import _free_port
from tests.test_people import _key, _second_account
from tests.unseal_support import Unseal, setup_unseal

BODY = {
    "case_number": "SPD-2026-8",
    "justification": "Same vehicle, another case; the image identifies it.",
}


def _file_as(u: Unseal, headers: dict[str, str]) -> Any:
    return u.api.client.post(
        "/unseal/requests", json={"evidence_id": str(u.evidence_id), **BODY}, headers=headers
    )


def _investigator(api: Api, name: str) -> dict[str, str]:
    accounts.create_user(
        db=api.dep.db,
        audit=api.dep.audit,
        actor="t",
        name=name,
        role=Role.INVESTIGATOR,
        password=None,
    )
    key = accounts.create_api_key(db=api.dep.db, audit=api.dep.audit, actor="t", name=name)[1]
    return {"Authorization": f"Bearer {key}"}


def _refusals(api: Api) -> list[dict[str, Any]]:
    return [e.entry.details for e in api.dep.audit.entries(action="unseal.refused") if e.entry]


def _partials(api: Api) -> int:
    with api.dep.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(UnsealApproval)).scalar_one())


def test_only_the_requester_learns_which_request_is_open(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    first = u.file()  # by investigator-1
    stranger = _file_as(u, _investigator(api, "ines"))
    assert stranger.status_code == 409
    message = stranger.json()["error"]["message"]
    assert "another unseal request for this evidence item is still open" in message
    assert str(first["id"]) not in message
    # The audit log still says which request blocked the filing.
    assert _refusals(api)[-1]["open_request"] == str(first["id"])
    assert str(first["id"]) not in _refusals(api)[-1]["reason"]
    # The requester, from this account or another of theirs, is told (and may withdraw it).
    assert _second_account(api, "investigator-1.b", Role.INVESTIGATOR).status_code == 201
    for headers in (api.auth(Role.INVESTIGATOR), _key(api, "investigator-1.b")):
        own = _file_as(u, headers)
        assert own.status_code == 409
        message = own.json()["error"]["message"]
        assert f"your unseal request {first['id']}" in message and "withdraw" in message
        assert _refusals(api)[-1]["open_request"] == str(first["id"])


def test_the_requester_withdraws_a_pending_request(api: Api, tmp_path: Path) -> None:
    u = setup_unseal(api, tmp_path)
    first = u.file()
    assert u.approve("compliance-1", first).status_code == 200
    assert _partials(api) == 1
    path = f"/unseal/requests/{first['id']}/withdraw"
    # Not theirs: another investigator is told there is no such request; nothing changes.
    stranger = api.client.post(path, headers=_investigator(api, "ines"))
    assert stranger.status_code == 404, stranger.text
    assert api.call(Role.COMPLIANCE, "POST", path).status_code == 403
    assert (
        api.call(Role.COMPLIANCE, "GET", f"/unseal/requests/{first['id']}").json()["status"]
        == "pending"
    )
    assert _partials(api) == 1

    withdrawn = api.call(Role.INVESTIGATOR, "POST", path)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["approvals"] == 0
    assert _partials(api) == 0  # erased with the request
    if api.dep.db.is_sqlite:
        assert api.dep.db.scrub_marker.exists()
    done = [e for e in api.dep.audit.entries(action="unseal.withdrawn") if e.entry]
    assert [(e.entry.actor, e.entry.details) for e in done if e.entry] == [
        ("user:investigator-1", {"request": str(first["id"])})
    ]
    # Ended: it cannot be withdrawn again or approved (both refusals audited); a new one is filed.
    again = api.call(Role.INVESTIGATOR, "POST", path)
    assert again.status_code == 403 and "already withdrawn" in again.json()["error"]["message"]
    late = u.approve("compliance-2", first)
    assert late.status_code == 403 and "already withdrawn" in late.json()["error"]["message"]
    assert [r["subject"] for r in _refusals(api)[-2:]] == [str(first["id"])] * 2
    second = u.file()
    assert second["status"] == "pending" and second["id"] != first["id"]


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def live(api: Api) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(api.home, run_scheduler=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
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


def test_cli_unseal_withdraw(api: Api, tmp_path: Path, live: str) -> None:
    u = setup_unseal(api, tmp_path)
    first = u.file()
    password = "a long account password"
    accounts.set_password(
        db=api.dep.db, audit=api.dep.audit, actor="t", name="investigator-1", password=password
    )
    args = ["unseal", "withdraw", str(first["id"]), "--user", "investigator-1", "--server", live]
    result = CliRunner().invoke(cli, [*args, "--secrets-stdin"], input=f"{password}\n")
    assert result.exit_code == 0, result.output
    assert f"request {first['id']} withdrawn" in result.output
    status = api.call(Role.COMPLIANCE, "GET", f"/unseal/requests/{first['id']}").json()["status"]
    assert status == "withdrawn"
    result = CliRunner().invoke(cli, [*args, "--secrets-stdin"], input=f"{password}\n")
    assert result.exit_code != 0 and "already withdrawn" in " ".join(result.output.split())
