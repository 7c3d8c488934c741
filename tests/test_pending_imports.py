"""Console CSV imports between preview and confirmation live in the database, encrypted
(privplate.console.pending_imports): a preview on one worker is confirmed on another, no plate
reaches the disk in the clear, and a pending import is its session's, used once, short-lived,
one per session and bounded in number; the retention purge clears the expired ones."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from privplate.api import create_app
from privplate.console.pending_imports import MAX_PENDING, TTL_SECONDS, PendingImports
from privplate.deployment import Deployment
from privplate.hotlists import HotlistSource
from privplate.identity.roles import Role
from privplate.retention.purge import purge
from privplate.server_secret import read_server_secret
from privplate.services import Services
from privplate.store.pending_import_models import PendingImport
from tests.console_support import BASE, ConsoleClients, open_console
from tests.migration_support import assert_migration_matches_model
from tests.privacy import dump_database, hits_in_bytes

PLATES = ["7QZX481", "8WVK226", "3JHN907"]
CSV = "plate,reason,case_number\n" + "".join(
    f"{p},reported stolen,PI-{i}\n" for i, p in enumerate(PLATES)
)
KEY = re.compile(r'name="pending" value="([^"]+)"')


@pytest.fixture
def web(home: Path) -> Iterator[ConsoleClients]:
    yield from open_console(home)


@pytest.fixture
def pending(dep: Deployment) -> PendingImports:
    return PendingImports(dep.db, read_server_secret(dep.settings.server_secret_path))


def _services(web: ConsoleClients) -> Services:
    services: Services = web.app_client.app.state.services  # type: ignore[attr-defined]
    return services


def _rows(dep: Deployment) -> int:
    with dep.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(PendingImport)).scalar_one())


def _preview(client: TestClient, csrf: str, hotlist: str) -> str:
    answer = client.post(
        f"/console/operator/hotlists/{hotlist}/import",
        data={"csrf": csrf},
        files={"csv_file": ("stolen.csv", CSV.encode(), "text/csv")},
    )
    assert answer.status_code == 200, answer.text
    found = KEY.search(answer.text)
    assert found, "the preview offers no confirmation"
    return found.group(1)


def _confirm(client: TestClient, csrf: str, hotlist: str, key: str) -> int:
    answer = client.post(
        f"/console/operator/hotlists/{hotlist}/import/confirm",
        data={"csrf": csrf, "pending": key},
        follow_redirects=False,
    )
    return int(answer.status_code)


# -- across workers, on disk ---------------------------------------------------------------


def test_a_preview_on_one_worker_is_confirmed_on_another_and_no_plate_reaches_the_disk(
    home: Path, web: ConsoleClients
) -> None:
    services = _services(web)
    services.hotlists.create(actor="test", name="pi-across", source=HotlistSource.STOLEN_VEHICLE)
    first = web.clients[Role.OPERATOR]
    csrf = web.csrf[Role.OPERATOR]
    key = _preview(first, csrf, "pi-across")
    url = web.dep.db.url
    assert _rows(web.dep) == 1
    held = dump_database(url)
    assert hits_in_bytes(held, PLATES) == [], "a pending import left a plate on disk"
    # A second app on the same deployment stands for another worker (its own Services, its
    # own memory); the browser's session cookie goes to it.
    other = create_app(home, run_scheduler=False)
    with TestClient(other, base_url=BASE, cookies=dict(first.cookies)) as second:
        assert _confirm(second, csrf, "pi-across", key) == 303
        assert services.hotlists.get("pi-across").live_entries == len(PLATES)
        # Used once: neither worker confirms it again.
        assert _confirm(second, csrf, "pi-across", key) == 409
    assert _confirm(first, csrf, "pi-across", key) == 409
    assert services.hotlists.get("pi-across").live_entries == len(PLATES)
    assert _rows(web.dep) == 0
    assert hits_in_bytes(dump_database(url), PLATES) == []


def test_another_session_cannot_take_it_and_the_owner_still_can(
    pending: PendingImports, dep: Deployment
) -> None:
    key = pending.put(session_token="pps_owner", hotlist="stolen", text=CSV)
    assert pending.take(session_token="pps_thief", hotlist="stolen", key=key) is None
    assert pending.take(session_token="pps_owner", hotlist="other", key=key) is None
    assert pending.take(session_token="pps_owner", hotlist="stolen", key="made-up") is None
    assert _rows(dep) == 1  # a wrong try does not use it up
    assert pending.take(session_token="pps_owner", hotlist="stolen", key=key) == CSV
    assert pending.take(session_token="pps_owner", hotlist="stolen", key=key) is None
    assert _rows(dep) == 0


def test_two_confirmations_at_once_take_it_once(pending: PendingImports) -> None:
    key = pending.put(session_token="pps_owner", hotlist="stolen", text=CSV)

    def take(_: int) -> str | None:
        return pending.take(session_token="pps_owner", hotlist="stolen", key=key)

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(take, range(8)))
    assert got.count(CSV) == 1 and got.count(None) == 7


def test_a_ciphertext_moved_to_another_row_does_not_open(
    pending: PendingImports, dep: Deployment
) -> None:
    mine = pending.put(session_token="pps_a", hotlist="stolen", text=CSV)
    theirs = pending.put(session_token="pps_b", hotlist="stolen", text="plate,reason,case_number\n")
    with dep.db.write() as conn:
        sealed = {r.owner: r.sealed for r in conn.execute(select(PendingImport))}
        conn.execute(
            update(PendingImport)
            .where(PendingImport.owner == PendingImports.owner_of("pps_b"))
            .values(sealed=sealed[PendingImports.owner_of("pps_a")])
        )
    assert pending.take(session_token="pps_b", hotlist="stolen", key=theirs) is None
    assert pending.take(session_token="pps_a", hotlist="stolen", key=mine) == CSV


def test_the_file_is_padded_so_its_size_says_little(
    pending: PendingImports, dep: Deployment
) -> None:
    pending.put(session_token="pps_a", hotlist="stolen", text=CSV)
    pending.put(session_token="pps_b", hotlist="stolen", text=CSV + "9ZZZ999,x,PI-9\n")
    with dep.db.read() as conn:
        sizes = {len(s) for s in conn.execute(select(PendingImport.sealed)).scalars()}
    assert len(sizes) == 1


# -- lifetime and bounds -------------------------------------------------------------------


def test_an_expired_one_is_refused_and_deleted(pending: PendingImports, dep: Deployment) -> None:
    now = datetime.now(UTC)
    key = pending.put(session_token="pps_owner", hotlist="stolen", text=CSV, now=now)
    later = now + timedelta(seconds=TTL_SECONDS + 1)
    assert pending.take(session_token="pps_owner", hotlist="stolen", key=key, now=later) is None
    assert _rows(dep) == 0


def test_a_put_deletes_expired_ones_of_other_sessions(
    pending: PendingImports, dep: Deployment
) -> None:
    old = datetime.now(UTC) - timedelta(seconds=TTL_SECONDS + 1)
    pending.put(session_token="pps_gone", hotlist="stolen", text=CSV, now=old)
    pending.put(session_token="pps_new", hotlist="stolen", text=CSV)
    with dep.db.read() as conn:
        owners = list(conn.execute(select(PendingImport.owner)).scalars())
    assert owners == [PendingImports.owner_of("pps_new")]


def test_the_retention_purge_deletes_expired_ones(pending: PendingImports, dep: Deployment) -> None:
    now = datetime.now(UTC)
    ttl = timedelta(seconds=TTL_SECONDS)
    pending.put(session_token="pps_a", hotlist="stolen", text=CSV, now=now)
    pending.put(session_token="pps_b", hotlist="stolen", text=CSV, now=now + ttl / 2)
    report = purge(dep, now=now + ttl + timedelta(seconds=1))
    assert report.records_deleted["pending_imports"] == 1
    with dep.db.read() as conn:
        owners = list(conn.execute(select(PendingImport.owner)).scalars())
    assert owners == [PendingImports.owner_of("pps_b")]


def test_one_per_session_a_new_upload_replaces_the_old(
    pending: PendingImports, dep: Deployment
) -> None:
    first = pending.put(session_token="pps_owner", hotlist="stolen", text=CSV)
    second = pending.put(session_token="pps_owner", hotlist="other", text=CSV)
    assert _rows(dep) == 1
    assert pending.take(session_token="pps_owner", hotlist="stolen", key=first) is None
    assert pending.take(session_token="pps_owner", hotlist="other", key=second) == CSV


def test_at_most_max_pending_the_oldest_goes_first(
    pending: PendingImports, dep: Deployment
) -> None:
    start = datetime.now(UTC)
    keys = [
        pending.put(
            session_token=f"pps_{i}", hotlist="stolen", text=CSV, now=start + timedelta(seconds=i)
        )
        for i in range(MAX_PENDING + 3)
    ]
    assert _rows(dep) == MAX_PENDING
    late = start + timedelta(seconds=MAX_PENDING + 3)
    for i in range(3):
        assert (
            pending.take(session_token=f"pps_{i}", hotlist="stolen", key=keys[i], now=late) is None
        )
    last = MAX_PENDING + 2
    taken = pending.take(session_token=f"pps_{last}", hotlist="stolen", key=keys[last], now=late)
    assert taken == CSV


# -- the migration -------------------------------------------------------------------------


def test_the_migration_matches_the_model(home: Path) -> None:
    assert_migration_matches_model(home, before="0015_webhook_outbox", table="pending_imports")
