"""Limits hold under concurrency: two real `privplate serve` processes on one database (the
README's city setup) and a burst of simultaneous requests. Exactly the quota is answered, every
other request is refused with 429 (never a 5xx), and each refusal is on the record: a query
record, an audit entry and one more occurrence of the compliance flag."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from privplate.deployment import Deployment
from privplate.devices import DeviceKey, IngestBatch, registry
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.policy.flags import list_flags
from privplate.store.models import Read
from privplate.store.server_models import HotlistEntry, Query
from tests import factories
from tests.cluster_support import servers
from tests.test_api_policy import query_body

WORKERS = 48


def burst(calls: list[tuple[str, str, str, dict[str, Any]]]) -> Counter[int]:
    """Send (url, key, path, body) POSTs at once from many threads; count the statuses."""

    def one(call: tuple[str, str, str, dict[str, Any]]) -> int:
        url, key, path, body = call
        with httpx.Client(base_url=url, timeout=120) as client:
            answer = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
            return answer.status_code

    with ThreadPoolExecutor(WORKERS) as pool:
        return Counter(pool.map(one, calls))


def _users(home: Path, role: Role, names: list[str]) -> dict[str, str]:
    keys: dict[str, str] = {}
    with Deployment.open(home, actor="test-setup") as dep:
        for name in names:
            accounts.create_user(
                db=dep.db, audit=dep.audit, actor="test", name=name, role=role, password=None
            )
            keys[name] = accounts.create_api_key(
                db=dep.db, audit=dep.audit, actor="test", name=name
            )[1]
    return keys


def _plate(i: int) -> str:
    return f"{i:04d}QZX"


def _query_outcomes(dep: Deployment) -> Counter[str]:
    queries = Query.__table__
    with dep.db.read() as conn:
        rows = conn.execute(select(queries.c.outcome, func.count()).group_by(queries.c.outcome))
        return Counter({r[0]: int(r[1]) for r in rows})


def _audited(dep: Deployment, action: str) -> int:
    return sum(1 for e in dep.audit.entries(action=action) if e.action == action)


def _occurrences(dep: Deployment, kind: str) -> int:
    return sum(f.occurrences for f in list_flags(db=dep.db, open_only=False) if f.kind == kind)


def test_one_investigator_gets_exactly_the_quota_across_two_servers(home: Path) -> None:
    quota, total = 25, 200
    key = _users(home, Role.INVESTIGATOR, ["ivy"])["ivy"]
    with servers(home, 2, {"QUERIES__PER_USER_PER_DAY": str(quota)}) as urls:
        statuses = burst(
            [(urls[i % 2], key, "/queries", query_body(_plate(i))) for i in range(total)]
        )
    assert statuses == {200: quota, 429: total - quota}
    with Deployment.open(home) as dep:
        assert _query_outcomes(dep) == {"answered": quota, "refused": total - quota}
        assert _audited(dep, "queries.answered") == quota
        assert _audited(dep, "queries.refused") == total - quota
        flags = [f for f in list_flags(db=dep.db) if f.kind == "query-quota"]
        assert [(f.subject, f.occurrences) for f in flags] == [("person:ivy", total - quota)]


def test_the_deployment_quota_holds_across_two_servers(home: Path) -> None:
    quota, people, each = 30, 3, 30
    names = [f"inv-{i}" for i in range(people)]
    keys = _users(home, Role.INVESTIGATOR, names)
    calls = [
        (f"{i % 2}", keys[names[i % people]], "/queries", query_body(_plate(i)))
        for i in range(people * each)
    ]
    settings = {"QUERIES__PER_USER_PER_DAY": "1000", "QUERIES__PER_DEPLOYMENT_PER_DAY": str(quota)}
    with servers(home, 2, settings) as urls:
        statuses = burst([(urls[int(u)], k, p, b) for u, k, p, b in calls])
    refused = people * each - quota
    assert statuses == {200: quota, 429: refused}
    with Deployment.open(home) as dep:
        assert _query_outcomes(dep) == {"answered": quota, "refused": refused}
        assert _audited(dep, "queries.answered") == quota
        assert _audited(dep, "queries.refused") == refused
        assert _occurrences(dep, "deployment-query-quota") == refused
        assert _occurrences(dep, "query-quota") == 0


def _entry(i: int) -> dict[str, Any]:
    return {"entries": [{"plate": _plate(i), "reason": "reported stolen", "case_number": "S-1"}]}


@pytest.mark.parametrize("cap", ["per-list", "total", "per-person"])
def test_hotlist_caps_hold_across_two_servers(home: Path, cap: str) -> None:
    limit, total = 20, 60
    settings = {
        "total": {"HOTLISTS__MAX_ENTRIES_TOTAL": str(limit)},
        "per-person": {"HOTLISTS__ENTRIES_PER_USER_PER_DAY": str(limit)},
    }.get(cap, {})
    key = _users(home, Role.OPERATOR, ["olga"])["olga"]
    lists = ["stolen-a", "stolen-b"]
    with servers(home, 2, settings) as urls:
        for name in lists:
            body: dict[str, Any] = {"name": name, "source": "stolen-vehicle"}
            if cap == "per-list":
                body["max_entries"] = limit
            answer = httpx.post(
                f"{urls[0]}/hotlists", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == 201, answer.text
        # Per list: everything goes to one list; otherwise the burst alternates lists.
        target = (lambda i: lists[0]) if cap == "per-list" else (lambda i: lists[(i // 2) % 2])
        statuses = burst(
            [(urls[i % 2], key, f"/hotlists/{target(i)}/entries", _entry(i)) for i in range(total)]
        )
    assert statuses == {201: limit, 429: total - limit}
    with Deployment.open(home) as dep:
        entries = HotlistEntry.__table__
        with dep.db.read() as conn:
            assert conn.execute(select(func.count()).select_from(entries)).scalar_one() == limit
        assert _audited(dep, "hotlists.entries_added") == limit
        assert _audited(dep, "hotlists.entries_refused") == total - limit
        assert _occurrences(dep, "hotlist-quota") == total - limit


def test_a_signed_request_replayed_at_once_to_two_servers_is_taken_once(home: Path) -> None:
    with Deployment.open(home, actor="test-setup") as dep:
        dep.add_camera("gate-1")
        device = DeviceKey.generate("edge-1")
        registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor="test",
            device_id="edge-1",
            public_key=device.public_key,
            cameras=["gate-1"],
        )
        batch = IngestBatch.from_store(uuid.uuid4(), [factories.read(dep, "5RPL555")], [])
    body = json.dumps(batch.model_dump(mode="json")).encode()
    headers = {**device.sign_request("POST", "/ingest", body), "Content-Type": "application/json"}

    def send(url: str) -> int:
        return httpx.post(f"{url}/ingest", content=body, headers=headers, timeout=120).status_code

    with servers(home, 2, {}) as urls, ThreadPoolExecutor(WORKERS) as pool:
        statuses = Counter(pool.map(send, [urls[i % 2] for i in range(40)]))
    assert sorted(statuses) == [200, 401] and statuses[200] == 1, statuses
    with Deployment.open(home) as dep, dep.db.read() as conn:
        reads = Read.__table__
        assert conn.execute(select(func.count()).select_from(reads)).scalar_one() == 1
