"""Limits hold across the worker processes of one `privplate serve --workers 4` (PostgreSQL):
a burst of simultaneous requests over many connections, spread over the workers, gets exactly
the quota answered and every other request refused with 429; a hotlist's cap is never passed by
imports racing on several workers, each import all or nothing. The database (stored queries and
entries), the audit log and the compliance flags agree with the answers."""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from privplate.deployment import Deployment
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.policy.flags import list_flags
from privplate.store.server_models import HotlistEntry, Query, User
from tests.async_run import run_async
from tests.conftest import ON_POSTGRES
from tests.loadbed import Server
from tests.test_api_policy import query_body

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="several workers are for PostgreSQL")

WORKERS = 4


@dataclass(frozen=True)
class Call:
    key: str
    path: str
    json: dict[str, Any] | None = None
    csv: str | None = None


@dataclass(frozen=True)
class Answer:
    status: int
    error: str
    message: str
    pid: int  # the worker process that answered (0: its connection was gone already)


@contextmanager
def served(home: Path, settings: dict[str, str]) -> Iterator[Server]:
    env = {
        **os.environ,
        "PRIVPLATE_SERVER__RUN_PURGE_SCHEDULER": "false",
        **{f"PRIVPLATE_{k}": v for k, v in settings.items()},
    }
    server = Server(home, WORKERS, env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _workers_of(server: Server, client_ports: set[int]) -> dict[int, int]:
    """Which worker process holds the server end of each of our connections (by our local
    port): the kernel's TCP table, matched by socket inode to the workers' open files."""
    inodes: dict[int, int] = {}
    for pid in server.worker_pids():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[int(target[8:-1])] = pid
    found: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = int(fields[1].split(":")[1], 16), fields[2], int(fields[9])
        port = int(remote.split(":")[1], 16)
        if local == server.port and port in client_ports and inode in inodes:
            found[port] = inodes[inode]
    return found


def _port_of(answer: httpx.Response) -> int:
    return int(answer.extensions["network_stream"].get_extra_info("client_addr")[1])


def burst(server: Server, calls: list[Call]) -> list[Answer]:
    """Every call at once, each on a connection of its own, the connections opened first and
    dealt out over the workers that accepted them (a few connections opened at once tend to
    be accepted by one worker); each answer names the worker that gave it."""

    async def one(client: httpx.AsyncClient, call: Call) -> Answer:
        auth = {"Authorization": f"Bearer {call.key}"}
        if call.csv is not None:
            answer = await client.post(
                call.path, content=call.csv, headers={**auth, "Content-Type": "text/csv"}
            )
        else:
            answer = await client.post(call.path, json=call.json, headers=auth)
        port = _port_of(answer)
        pid = _workers_of(server, {port}).get(port, 0)
        error = answer.json().get("error", {}) if answer.status_code >= 400 else {}
        return Answer(answer.status_code, error.get("type", ""), error.get("message", ""), pid)

    async def run() -> list[Answer]:
        async with AsyncExitStack() as stack:
            by_worker: dict[int, list[httpx.AsyncClient]] = defaultdict(list)
            opened = 0
            while opened < 400 and (opened < len(calls) or len(by_worker) < WORKERS):
                batch = [
                    await stack.enter_async_context(
                        httpx.AsyncClient(base_url=server.url, timeout=300)
                    )
                    for _ in range(max(len(calls) - opened, 25))
                ]
                opened += len(batch)
                alive = await asyncio.gather(*(c.get("/healthz") for c in batch))
                ports = {_port_of(a): c for a, c in zip(alive, batch, strict=True)}
                for port, pid in _workers_of(server, set(ports)).items():
                    by_worker[pid].append(ports[port])
            # Round robin over the workers, as long as each has connections left.
            queues = [list(q) for q in by_worker.values()]
            dealt: list[httpx.AsyncClient] = []
            while len(dealt) < len(calls) and any(queues):
                dealt += [q.pop() for q in queues if q][: len(calls) - len(dealt)]
            assert len(dealt) == len(calls), "too few connections stayed open"
            return list(await asyncio.gather(*map(one, dealt, calls)))

    return run_async(run())


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


def _spread(server: Server, answers: list[Answer]) -> Counter[int]:
    spread = Counter(a.pid for a in answers)
    print(f"\nanswers per worker: {sorted(spread.values(), reverse=True)}")  # noqa: T201 - figures
    assert set(spread) <= set(server.worker_pids())
    assert len(spread) >= 2, "the burst never reached a second worker"
    return spread


def _audited(dep: Deployment, action: str) -> int:
    return sum(1 for e in dep.audit.entries(action=action) if e.action == action)


def _occurrences(dep: Deployment, kind: str) -> int:
    return sum(f.occurrences for f in list_flags(db=dep.db, open_only=False) if f.kind == kind)


def _outcomes_by_user(dep: Deployment) -> Counter[tuple[str, str]]:
    with dep.db.read() as conn:
        rows = conn.execute(
            select(User.name, Query.outcome, func.count())
            .join(User, User.id == Query.user_id)
            .group_by(User.name, Query.outcome)
        )
        return Counter({(r[0], str(r[1])): int(r[2]) for r in rows})


def _plate(i: int) -> str:
    return f"{i:04d}QZX"


# -- queries ------------------------------------------------------------------------------------


def test_one_investigator_gets_exactly_the_quota_over_four_workers(home: Path) -> None:
    quota, total = 20, 200
    keys = _users(home, Role.INVESTIGATOR, ["ivy"])
    calls = [Call(keys["ivy"], "/queries", query_body(_plate(i))) for i in range(total)]
    settings = {"QUERIES__PER_USER_PER_DAY": str(quota), "QUERIES__SPOT_CHECK_SHARE": "0"}
    with served(home, settings) as server:
        answers = burst(server, calls)
        _spread(server, answers)
    assert Counter(a.status for a in answers) == {200: quota, 429: total - quota}
    refusals = {(a.error, "per_user_per_day" in a.message) for a in answers if a.status == 429}
    assert refusals == {("quota_exceeded", True)}
    with Deployment.open(home) as dep:
        assert _outcomes_by_user(dep) == {
            ("ivy", "answered"): quota,
            ("ivy", "refused"): total - quota,
        }
        assert _audited(dep, "queries.answered") == quota
        assert _audited(dep, "queries.refused") == total - quota
        assert _occurrences(dep, "query-quota") == total - quota


def test_the_deployment_quota_holds_over_four_workers(home: Path) -> None:
    quota, each = 20, 100
    names = ["ivy", "ian"]
    keys = _users(home, Role.INVESTIGATOR, names)
    calls = [Call(keys[names[i % 2]], "/queries", query_body(_plate(i))) for i in range(2 * each)]
    settings = {
        "QUERIES__PER_USER_PER_DAY": "15",  # each alone under 20; the two together over it
        "QUERIES__PER_DEPLOYMENT_PER_DAY": str(quota),
        "QUERIES__SPOT_CHECK_SHARE": "0",
    }
    with served(home, settings) as server:
        answers = burst(server, calls)
        _spread(server, answers)
    refused = 2 * each - quota
    assert Counter(a.status for a in answers) == {200: quota, 429: refused}
    assert {a.error for a in answers if a.status == 429} == {"quota_exceeded"}
    with Deployment.open(home) as dep:
        outcomes = _outcomes_by_user(dep)
        answered = {n: outcomes[(n, "answered")] for n in names}
        assert sum(answered.values()) == quota
        assert all(n <= 15 for n in answered.values()), answered
        assert sum(outcomes[(n, "refused")] for n in names) == refused
        assert set(outcomes) <= {(n, o) for n in names for o in ("answered", "refused")}
        assert _audited(dep, "queries.answered") == quota
        assert _audited(dep, "queries.refused") == refused
        # A refusal over quota is flagged once, under the quota that refused it.
        assert (
            _occurrences(dep, "deployment-query-quota") + _occurrences(dep, "query-quota")
            == refused
        )


# -- hotlist imports ----------------------------------------------------------------------------


def _csv(first: int, count: int) -> str:
    rows = "".join(f"{_plate(first + i)},reported stolen,HL-{first}\n" for i in range(count))
    return "plate,reason,case_number\n" + rows


def _live(dep: Deployment) -> int:
    with dep.db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(HotlistEntry)
                .where(HotlistEntry.removed_at.is_(None))
            ).scalar_one()
        )


def test_imports_into_one_hotlist_on_four_workers_never_pass_its_cap(home: Path) -> None:
    cap, size, imports = 100, 30, 10
    keys = _users(home, Role.OPERATOR, ["olga", "otto"])
    names = list(keys)
    calls = [
        Call(keys[names[i % 2]], "/hotlists/stolen/import", csv=_csv(i * size, size))
        for i in range(imports)
    ]
    seen: list[int] = []
    stop = threading.Event()
    with Deployment.open(home, actor="test-watch") as dep:

        def watch() -> None:  # the stored live count, all through the burst
            while not stop.is_set():
                seen.append(_live(dep))
                stop.wait(0.01)

        with served(home, {}) as server:
            made = httpx.post(
                f"{server.url}/hotlists",
                json={"name": "stolen", "source": "stolen-vehicle", "max_entries": cap},
                headers={"Authorization": f"Bearer {keys['olga']}"},
            )
            assert made.status_code == 201, made.text
            watcher_thread = threading.Thread(target=watch)
            watcher_thread.start()
            try:
                answers = burst(server, calls)
            finally:
                stop.set()
                watcher_thread.join()
            _spread(server, answers)
        accepted = cap // size
        print(f"\nlive counts sampled: {len(seen)}, highest {max(seen)}")  # noqa: T201 - figures
        assert max(seen) <= cap
        assert Counter(a.status for a in answers) == {201: accepted, 429: imports - accepted}
        refusals = {(a.error, f"cap of {cap}" in a.message) for a in answers if a.status == 429}
        assert refusals == {("quota_exceeded", True)}
        # All or nothing: every accepted import whole, nothing of a refused one.
        assert _live(dep) == accepted * size
        with dep.db.read() as conn:
            cases = Counter(conn.execute(select(HotlistEntry.case_number)).scalars())
        assert sorted(cases.values()) == [size] * accepted
        assert _audited(dep, "hotlists.entries_added") == accepted
        assert _audited(dep, "hotlists.entries_refused") == imports - accepted
        assert _occurrences(dep, "hotlist-quota") == imports - accepted
