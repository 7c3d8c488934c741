"""The webhook outbox: delivery rows written in the alert's transaction, claimed under a lease,
retried with backoff, and delivered once to every endpoint by whichever server process gets
there, including after a worker is killed in the middle of a delivery."""

from __future__ import annotations

import json
import socket
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from privplate.alerts.outbox import MAX_BACKOFF, claim_due, mark_delivered, retry_delay
from privplate.deployment import Deployment
from privplate.devices import DeviceKey, IngestBatch, registry
from privplate.identity.roles import Role
from privplate.retention.purge import purge
from privplate.services import Services
from privplate.store.outbox_models import WebhookDelivery
from privplate.store.server_models import Alert
from tests import factories
from tests.api_support import Api
from tests.cluster_support import Server, cluster, free_port
from tests.migration_support import assert_migration_matches_model
from tests.webhook_support import (
    Receiver,
    delivery_ids,
    hotlist_of,
    outbox,
    plates,
    raise_alerts,
    settled,
    wait_for,
)


def _fast(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    values = {"FIRST_RETRY_SECONDS": "0.1", **settings}
    for name, value in values.items():
        monkeypatch.setenv(f"PRIVPLATE_WEBHOOKS__{name}", value)


# -- the rows --------------------------------------------------------------------------------


def test_each_alert_gets_one_row_per_active_webhook_in_its_own_transaction(
    dep: Deployment,
) -> None:
    with Services(dep) as services:
        first, _ = services.webhooks.create(actor="admin", url="http://127.0.0.1:9/a")
        second, _ = services.webhooks.create(actor="admin", url="http://127.0.0.1:9/b")
        gone, _ = services.webhooks.create(actor="admin", url="http://127.0.0.1:9/c")
        services.webhooks.deactivate(actor="admin", webhook_id=gone.id)
        hotlist_of(services, plates(3))

        def boom(*_args: object) -> None:
            raise RuntimeError("the batch fails after its alerts were recorded")

        with pytest.raises(RuntimeError):
            services.ingest([factories.read(dep, plates(3)[0])], actor="edge-1", then=boom)
        with dep.db.read() as conn:
            assert conn.execute(select(func.count()).select_from(Alert)).scalar_one() == 0
        assert outbox(dep) == []  # rolled back with the alert it was for

        alerts = raise_alerts(services, plates(3)[1:])
    rows = outbox(dep)
    assert sorted((r.alert_id, r.webhook_id) for r in rows) == sorted(
        (a.id, h.id) for a in alerts for h in (first, second)
    )
    assert {r.status for r in rows} == {"pending"}  # nothing listens at those addresses
    assert len({r.id for r in rows}) == len(rows)


def test_the_rows_hold_no_plate_and_go_with_their_alert(dep: Deployment) -> None:
    columns = {c.name for c in WebhookDelivery.__table__.columns}
    assert not {c for c in columns if "plate" in c or "token" in c or "body" in c}
    with Services(dep) as services:
        services.webhooks.create(actor="admin", url="http://127.0.0.1:9/a")
        hotlist_of(services, plates(1))
        raise_alerts(services, plates(1))
    assert len(outbox(dep)) == 1
    later = datetime.now(UTC) + dep.settings.retention_window("hit_reads") + timedelta(days=1)
    report = purge(dep, now=later)
    assert (report.records_deleted["webhook_deliveries"], report.records_deleted["alerts"]) == (
        1,
        1,
    )
    assert outbox(dep) == []


def test_the_migration_matches_the_model(home: Path) -> None:
    assert_migration_matches_model(home, before="0014_checkpoint_notes", table="webhook_deliveries")


# -- claims and leases -----------------------------------------------------------------------


def test_a_claimed_row_waits_for_its_lease_and_a_late_result_does_not_count(
    dep: Deployment,
) -> None:
    with Services(dep) as services:
        services.webhooks.create(actor="admin", url="http://127.0.0.1:9/a")
        hotlist_of(services, plates(1))
        raise_alerts(services, plates(1))
    # A day on, when the loop's first refused attempts (nothing listens there) are due again.
    lease, now = timedelta(seconds=30), datetime.now(UTC) + timedelta(days=1)
    [mine] = claim_due(dep.db, worker="a", limit=5, lease=lease, now=now)
    assert claim_due(dep.db, worker="b", limit=5, lease=lease, now=now) == []
    # Worker a died: once its lease ran out, b takes the row over (the attempt counts again).
    [theirs] = claim_due(dep.db, worker="b", limit=5, lease=lease, now=now + 2 * lease)
    assert (theirs.id, theirs.attempts) == (mine.id, mine.attempts + 1)
    assert not mark_delivered(dep.db, claim=mine, result="204")
    assert mark_delivered(dep.db, claim=theirs, result="204")
    [row] = outbox(dep)
    assert (row.status, row.claimed_by, row.last_result) == ("delivered", "b", "204")


def test_retries_wait_four_times_longer_each_time_with_jitter_up_to_an_hour() -> None:
    for attempts in range(1, 12):
        base = min(0.5 * 4 ** (attempts - 1), MAX_BACKOFF.total_seconds())
        delay = retry_delay(attempts, 0.5).total_seconds()
        assert base <= delay <= base * 1.25, (attempts, delay)


# -- delivery in one process -----------------------------------------------------------------


def test_a_failing_receiver_is_retried_until_it_answers(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fast(monkeypatch)
    receiver = Receiver(lambda n: 503 if n < 2 else 204)
    with Deployment.open(home) as dep, Services(dep) as services:
        services.webhooks.create(actor="admin", url=receiver.url)
        hotlist_of(services, plates(1))
        raise_alerts(services, plates(1))
        wait_for(lambda: services.webhooks.delivered == 1, "the delivery")
        [row] = outbox(dep)
    receiver.close()
    assert (row.status, row.attempts, row.last_result) == ("delivered", 3, "204")
    assert [r.delivery for r in receiver.receipts] == [str(row.id)] * 3


def test_a_delivery_is_given_up_after_the_last_attempt(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fast(monkeypatch, MAX_ATTEMPTS="3")
    receiver = Receiver(lambda _n: 500)
    with Deployment.open(home) as dep, Services(dep) as services:
        services.webhooks.create(actor="admin", url=receiver.url)
        hotlist_of(services, plates(1))
        raise_alerts(services, plates(1))
        wait_for(lambda: services.webhooks.failed == 1, "giving up")
        [row] = outbox(dep)
        assert services.webhooks.delivered == 0
    receiver.close()
    assert (row.status, row.attempts, row.last_result) == ("failed", 3, "500")
    assert len(receiver.receipts) == 3


def test_a_receiver_down_for_a_while_gets_every_alert_once_when_it_is_back(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fast(monkeypatch)
    port = free_port()  # nothing listens there yet: connections are refused
    with Deployment.open(home) as dep, Services(dep) as services:
        hook, _ = services.webhooks.create(actor="admin", url=f"http://127.0.0.1:{port}/hook")
        hotlist_of(services, plates(5))
        alerts = raise_alerts(services, plates(5))
        wait_for(lambda: all(r.attempts >= 2 for r in outbox(dep)), "two refused attempts of each")
        assert {r.last_result for r in outbox(dep)} == {"ConnectionRefusedError"}
        receiver = Receiver(port=port)
        wait_for(lambda: services.webhooks.delivered == 5, "the deliveries once it is up")
        ids = delivery_ids(dep, hook.id)
    receiver.close()
    assert Counter(r.delivery for r in receiver.receipts) == Counter(dict.fromkeys(ids, 1))
    assert sorted(r.alert_id for r in receiver.receipts) == sorted(a.id for a in alerts)


def test_deactivating_a_webhook_gives_up_its_pending_deliveries(dep: Deployment) -> None:
    with Services(dep) as services:
        hook, _ = services.webhooks.create(actor="admin", url="http://127.0.0.1:9/a")
        hotlist_of(services, plates(2))
        raise_alerts(services, plates(2))
        services.webhooks.deactivate(actor="admin", webhook_id=hook.id)
    assert {(r.status, r.last_result) for r in outbox(dep)} == {("failed", "deactivated")}
    assert claim_due(dep.db, worker="a", limit=5, lease=timedelta(seconds=30)) == []


def test_an_admin_lists_a_webhooks_deliveries_without_its_secret(api: Api) -> None:
    receiver = Receiver()
    made = api.call(Role.ADMIN, "POST", "/webhooks", json={"url": receiver.url + "/hook"})
    assert made.status_code == 201, made.text
    secret, hook_id = made.json()["secret"], made.json()["id"]
    hotlist_of(api.services, plates(2))
    alerts = raise_alerts(api.services, plates(2))
    wait_for(lambda: api.services.webhooks.delivered == 2, "the deliveries")
    listed = api.call(Role.ADMIN, "GET", f"/webhooks/{hook_id}/deliveries")
    receiver.close()
    assert listed.status_code == 200, listed.text
    assert secret not in listed.text
    rows = listed.json()
    assert sorted(r["alert_id"] for r in rows) == sorted(a.id for a in alerts)
    assert {(r["status"], r["attempts"], r["last_result"]) for r in rows} == {
        ("delivered", 1, "204")
    }
    assert {r["id"] for r in rows} == receiver.deliveries()
    assert set(rows[0]) == {
        "id", "alert_id", "status", "attempts", "last_result", "created_at",
        "next_attempt_at", "delivered_at",
    }  # fmt: skip
    unknown = api.call(Role.ADMIN, "GET", f"/webhooks/{uuid.uuid4()}/deliveries")
    assert unknown.status_code == 404


# -- several server processes ----------------------------------------------------------------


def _device(dep: Deployment) -> DeviceKey:
    device = DeviceKey.generate("edge-1")
    registry.register_device(
        db=dep.db,
        audit=dep.audit,
        actor="test",
        device_id="edge-1",
        public_key=device.public_key,
        cameras=["gate-1"],
    )
    return device


def _setup(home: Path, receivers: list[Receiver], count: int) -> tuple[DeviceKey, list[uuid.UUID]]:
    with Deployment.open(home, actor="test-setup") as dep, Services(dep) as services:
        hooks = [services.webhooks.create(actor="admin", url=r.url)[0].id for r in receivers]
        hotlist_of(services, plates(count))
        return _device(dep), hooks


def _ingest_across(home: Path, device: DeviceKey, urls: list[str], count: int) -> None:
    """One signed batch per plate, each to the next server in turn, several at once."""
    with Deployment.open(home) as dep:
        reads = [factories.read(dep, p) for p in plates(count)]

    def send(i: int) -> int:
        batch = IngestBatch.from_store(uuid.uuid4(), [reads[i]], [])
        body = json.dumps(batch.model_dump(mode="json")).encode()
        headers = {
            **device.sign_request("POST", "/ingest", body),
            "Content-Type": "application/json",
        }
        url = urls[i % len(urls)]
        return httpx.post(f"{url}/ingest", content=body, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(send, range(count))) == {200}


def _pid(claimed_by: str) -> int:
    host, pid, _ = claimed_by.split(":")
    assert host == socket.gethostname()
    return int(pid)


def _check_each_alert_reached_each_endpoint(
    dep: Deployment, receivers: list[Receiver], hooks: list[uuid.UUID], count: int
) -> None:
    with dep.db.read() as conn:
        alert_ids = sorted(conn.execute(select(Alert.id)).scalars().all())
    assert len(alert_ids) == count
    assert {r.status for r in outbox(dep)} == {"delivered"}
    for receiver, hook in zip(receivers, hooks, strict=True):
        expected = delivery_ids(dep, hook)  # delivery id -> alert id, one per alert
        assert sorted(expected.values()) == alert_ids
        # Deduplicated by delivery id, the receiver has exactly one of each (alert, endpoint).
        first = {r.delivery: r.alert_id for r in receiver.receipts}
        assert first == expected
        assert {(r.delivery, r.alert_id) for r in receiver.receipts} == set(expected.items())


def test_three_servers_deliver_every_alert_to_every_endpoint_once(home: Path) -> None:
    count = 12
    receivers = [Receiver(), Receiver()]
    device, hooks = _setup(home, receivers, count)
    with cluster(home, 3, {}) as running:
        _ingest_across(home, device, [s.url for s in running], count)
        with Deployment.open(home) as dep:
            wait_for(lambda: len(outbox(dep)) == 2 * count and settled(dep), "every delivery")
            pids = {_pid(r.claimed_by) for r in outbox(dep)}
            _check_each_alert_reached_each_endpoint(dep, receivers, hooks, count)
    for receiver in receivers:
        receiver.close()
        # Exactly once: no duplicate even before deduplication (no worker died here).
        assert len(receiver.receipts) == count == len(receiver.deliveries())
    assert pids <= {s.proc.pid for s in running}


def test_a_delivery_whose_worker_is_killed_mid_post_is_made_by_another(home: Path) -> None:
    count = 6
    holding, plain = Receiver(hold_first=True), Receiver()
    receivers = [holding, plain]
    device, hooks = _setup(home, receivers, count)
    # A short lease, so another worker takes the killed one's delivery over quickly.
    settings = {"WEBHOOKS__LEASE_SECONDS": "3", "WEBHOOKS__ATTEMPT_TIMEOUT_SECONDS": "2"}
    with cluster(home, 3, settings) as running:
        _ingest_across(home, device, [s.url for s in running], count)
        assert holding.held.wait(60), "no delivery reached the receiver"
        held = holding.receipts[0].delivery
        with Deployment.open(home) as dep:
            claimed_by = next(r.claimed_by for r in outbox(dep) if str(r.id) == held)
            victim: Server = next(s for s in running if s.proc.pid == _pid(claimed_by))
            victim.proc.kill()  # SIGKILL: no graceful stop, its claims stay until they expire
            victim.proc.wait()
            holding.release.set()
            wait_for(lambda: len(outbox(dep)) == 2 * count and settled(dep), "every delivery")
            [row] = [r for r in outbox(dep) if str(r.id) == held]
            _check_each_alert_reached_each_endpoint(dep, receivers, hooks, count)
    for receiver in receivers:
        receiver.close()
    # The killed worker's POST reached the receiver, which saw the same delivery id again.
    assert Counter(r.delivery for r in holding.receipts)[held] >= 2
    assert row.attempts >= 2
    assert _pid(row.claimed_by) in {s.proc.pid for s in running} - {victim.proc.pid}
