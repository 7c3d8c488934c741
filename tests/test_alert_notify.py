"""Alerts pushed to every server process through PostgreSQL LISTEN/NOTIFY
(privplate.alerts.notify): a NOTIFY only at the commit of the batch that raised them, with the
highest alert id as its whole payload; an alert ingested on one server reaches an SSE stream on
another exactly once and in order, with no polling while the listener is connected; the
listener reconnects when its backend is terminated. On SQLite streams keep polling (and the
alert raised by another process still arrives)."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event, func, select, text

from privplate.alerts.broker import AlertBroker
from privplate.alerts.notify import APPLICATION_NAME, alert_channel
from privplate.alerts.stream import alert_events
from privplate.deployment import Deployment
from privplate.devices import DeviceKey, IngestBatch, registry
from privplate.hotlists import HotlistSource
from privplate.hotlists.service import EntryIn
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.services import Services
from privplate.store import ReadIn
from privplate.store.database import Database
from privplate.store.server_models import Alert
from tests import factories
from tests.async_run import run_async
from tests.cluster_support import Server, cluster
from tests.conftest import ON_POSTGRES

PLATE = "7NTF123"
CAMERA = "gate-1"
DEVICE = "edge-1"
ALERTS = 50
pg_only = pytest.mark.skipif(not ON_POSTGRES, reason="LISTEN/NOTIFY is PostgreSQL's")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _hotlist(services: Services) -> None:
    services.hotlists.create(
        actor="test", name="stolen", source=HotlistSource.STOLEN_VEHICLE, description=""
    )
    services.hotlists.add_entries(
        actor="test", hotlist="stolen", entries=[EntryIn(PLATE, "stolen", "NTF-1", None)]
    )


@contextmanager
def listening(db: Database) -> Iterator[psycopg.Connection[Any]]:
    """A connection of the test's own LISTENing on the deployment's alert channel."""
    with db.read() as conn:
        channel = alert_channel(conn)
    args, params = db.engine.dialect.create_connect_args(db.engine.url)
    params.pop("context", None)
    with psycopg.connect(*args, **params, autocommit=True) as conn:
        conn.execute(f'LISTEN "{channel}"')
        yield conn


def _alert_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(Alert)).scalar_one())


# -- in one process ------------------------------------------------------------------------------


class Refused(Exception):
    pass


@pg_only
def test_a_rolled_back_batch_notifies_nobody_and_a_commit_sends_the_last_id(
    dep: Deployment,
) -> None:
    dep.add_camera(CAMERA)
    with Services(dep) as services, listening(dep.db) as heard:
        _hotlist(services)

        def refuse(_conn: object, _result: object) -> None:
            raise Refused  # after the alerts (and their NOTIFY) are in the transaction

        with pytest.raises(Refused):
            services.ingest([factories.read(dep, PLATE, camera_id=CAMERA)], actor="t", then=refuse)
        assert _alert_count(dep.db) == 0
        assert list(heard.notifies(timeout=1.5)) == []

        two = [factories.read(dep, PLATE, camera_id=CAMERA) for _ in range(2)]
        _, alerts = services.ingest(two, actor="t")
        assert len(alerts) == 2
        got = list(heard.notifies(timeout=10, stop_after=1))
        got += list(heard.notifies(timeout=1))  # nothing else comes
        # One notification per batch: its highest alert id, nothing else.
        assert [n.payload for n in got] == [str(max(a.id for a in alerts))]


async def _watch(
    services: Services, other: Services, looks: list[str], idle: float
) -> tuple[list[int], int, int]:
    """A stream on ``services`` while ``other`` (another process's services: its own broker
    and engine) records an alert; the alert looks this process made while idle, in all."""
    stop = asyncio.Event()

    async def disconnected() -> bool:
        return stop.is_set()

    stream: AsyncIterator[bytes] = alert_events(
        db=services.dep.db,
        broker=services.broker,
        cursor=0,
        disconnected=disconnected,
        still_allowed=lambda: True,
        payload=lambda alert: alert.payload(),
    )
    assert await anext(stream) == b": connected\n\n"
    received: asyncio.Queue[int] = asyncio.Queue()

    async def read() -> None:
        async for chunk in stream:
            for line in chunk.decode().splitlines():
                if line.startswith("id: "):
                    received.put_nowait(int(line[4:]))

    reader = asyncio.create_task(read())
    await asyncio.sleep(idle)
    idle_looks = len(looks)
    read_in = factories.read(other.dep, PLATE, camera_id=CAMERA)
    _, raised = await asyncio.to_thread(other.ingest, [read_in], actor="t")
    got = await asyncio.wait_for(received.get(), 30)
    await asyncio.sleep(0.5)  # anything doubled would come now
    stop.set()
    services.broker.notify()  # let the loop see it is done
    await asyncio.wait_for(reader, 30)
    events = [got]
    while not received.empty():
        events.append(received.get_nowait())
    assert events == [raised[0].id]
    return events, idle_looks, len(looks)


def test_a_stream_gets_another_process_alert_and_polls_only_on_sqlite(home: Path) -> None:
    with Deployment.open(home, actor="t") as dep_a, Deployment.open(home, actor="t") as dep_b:
        dep_a.add_camera(CAMERA)
        with Services(dep_a) as other, Services(dep_b) as services:
            _hotlist(other)
            looks: list[str] = []

            @event.listens_for(dep_b.db.engine, "before_cursor_execute")
            def count(*args: Any) -> None:
                statement = str(args[2])
                if "FROM alerts" in statement:
                    looks.append(statement)

            services.alert_listener.start()
            if ON_POSTGRES:
                deadline = time.monotonic() + 30
                while not services.broker.pushed and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert services.broker.pushed, "the listener did not connect"
            else:
                assert not services.broker.pushed  # nothing to listen to on SQLite
            _, idle_looks, all_looks = run_async(_watch(services, other, looks, idle=3.5))
    print(f"\nalert looks: {idle_looks} while idle 3.5 s, {all_looks} in all")  # noqa: T201
    if ON_POSTGRES:
        # The first look (from the cursor), then one when the NOTIFY woke the stream.
        assert (idle_looks, all_looks) == (1, 2)
    else:
        assert idle_looks > 1  # SQLite: polling, as before


# -- across server processes ---------------------------------------------------------------------


@dataclass
class Setup:
    operator_key: str
    device: DeviceKey
    reads: list[ReadIn]


def _setup(home: Path, reads: int) -> Setup:
    with Deployment.open(home, actor="test") as dep, Services(dep) as services:
        dep.add_camera(CAMERA)
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="test", name="op", role=Role.OPERATOR, password=None
        )
        key = accounts.create_api_key(db=dep.db, audit=dep.audit, actor="test", name="op")[1]
        device = DeviceKey.generate(DEVICE)
        registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor="test",
            device_id=DEVICE,
            public_key=device.public_key,
            cameras=[CAMERA],
        )
        _hotlist(services)
        return Setup(
            key, device, [factories.read(dep, PLATE, camera_id=CAMERA) for _ in range(reads)]
        )


class Watch:
    """An SSE client on one server: (alert id, read id, when) per event."""

    def __init__(self, url: str, key: str) -> None:
        self.events: queue.Queue[tuple[int, str, float]] = queue.Queue()
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, key), daemon=True)
        self._thread.start()
        assert self.opened.wait(15), "the SSE stream did not open"

    def _run(self, url: str, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        timeout = httpx.Timeout(10.0, read=60.0)
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream("GET", f"{url}/alerts/stream", headers=headers) as answer,
        ):
            assert answer.status_code == 200
            for line in answer.iter_lines():
                self.opened.set()
                if self._stop.is_set():
                    return
                if line.startswith("data: "):
                    alert = json.loads(line[6:])
                    self.events.put((int(alert["id"]), alert["read_id"], time.perf_counter()))

    def stop(self) -> None:
        self._stop.set()


def _send(client: httpx.Client, device: DeviceKey, read: ReadIn) -> list[int]:
    body = json.dumps(IngestBatch.from_store(uuid.uuid4(), [read], []).model_dump(mode="json"))
    signed = device.sign_request("POST", "/ingest", body.encode())
    answer = client.post(
        "/ingest", content=body, headers={**signed, "Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    ids: list[int] = answer.json()["alerts"]
    return ids


def _listener_backend(db: Database, server: Server) -> int | None:
    with db.read() as conn:
        pid = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": f"{APPLICATION_NAME} {server.proc.pid}"},
        ).scalar()
    return int(pid) if pid is not None else None


def _wait_for(what: Any, message: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail(message)


@pg_only
def test_an_alert_on_one_server_reaches_a_stream_on_another_once_and_in_order(
    home: Path,
) -> None:
    setup = _setup(home, ALERTS)
    with (
        Deployment.open(home) as dep,
        cluster(home, 2, {}) as (a, b),
        listening(dep.db) as heard,
        httpx.Client(base_url=a.url, timeout=30) as client,
    ):
        _wait_for(lambda: _listener_backend(dep.db, b), "server B's listener did not connect")
        watch = Watch(b.url, setup.operator_key)
        raised: list[tuple[int, str]] = []
        from_send: list[float] = []
        from_answer: list[float] = []
        received: list[tuple[int, str]] = []
        for read in setup.reads:
            # One at a time, so each latency is the push's and not a queue's.
            sent = time.perf_counter()
            ids = _send(client, setup.device, read)
            answered = time.perf_counter()
            assert len(ids) == 1
            raised.append((ids[0], str(read.read_id)))
            alert_id, read_id, at = watch.events.get(timeout=30)
            received.append((alert_id, read_id))
            from_send.append(at - sent)
            from_answer.append(at - answered)
        time.sleep(1)  # a doubled event would come now
        while not watch.events.empty():
            alert_id, read_id, _ = watch.events.get_nowait()
            received.append((alert_id, read_id))
        watch.stop()
        payloads = [n.payload for n in heard.notifies(timeout=1)]
        logs = b.log.read_bytes() + a.log.read_bytes()
    ms = [1000 * s for s in from_send]
    ms_answer = [1000 * s for s in from_answer]
    print(  # noqa: T201 - the figures the issue asks for (pytest -s)
        f"\nalert on server A -> SSE on server B, {len(ms)} alerts: from send p50 "
        f"{percentile(ms, 50):.1f} ms p95 {percentile(ms, 95):.1f} ms max {max(ms):.1f} ms; "
        f"from A's answer p50 {percentile(ms_answer, 50):.1f} ms "
        f"p95 {percentile(ms_answer, 95):.1f} ms"
    )
    assert received == raised  # each exactly once, in order
    ids = [alert_id for alert_id, _ in raised]
    assert ids == sorted(ids)
    # What PostgreSQL carried: one bare id per batch, no plate, token or camera.
    assert payloads == [str(i) for i in ids]
    assert all(re.fullmatch(r"[0-9]+", p) for p in payloads)
    assert not any(PLATE in p or CAMERA in p for p in payloads)
    assert PLATE.encode() not in logs


@pg_only
def test_the_listener_reconnects_after_its_backend_is_terminated(home: Path) -> None:
    setup = _setup(home, 8)
    with (
        Deployment.open(home) as dep,
        cluster(home, 2, {}) as (a, b),
        httpx.Client(base_url=a.url, timeout=30) as client,
    ):
        first = _wait_for(lambda: _listener_backend(dep.db, b), "server B's listener is absent")
        watch = Watch(b.url, setup.operator_key)
        reads = iter(setup.reads)
        raised = [(_send(client, setup.device, next(reads))[0], "before")]
        assert watch.events.get(timeout=30)[0] == raised[0][0]
        with dep.db.read() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first}).scalar()
        # Raised while B may not be listening: found when it is back (or by its polling).
        raised.append((_send(client, setup.device, next(reads))[0], "during"))
        again = _wait_for(
            lambda: (p := _listener_backend(dep.db, b)) not in (None, first) and p,
            "server B's listener did not reconnect",
        )
        assert again != first
        raised += [(_send(client, setup.device, read)[0], "after") for read in reads]
        got = [watch.events.get(timeout=30)[0] for _ in raised[1:]]
        time.sleep(1)
        assert watch.events.empty()  # nothing twice
        watch.stop()
        log = b.log.read_text(errors="replace")
    assert [raised[0][0], *got] == [i for i, _ in raised]
    assert "alert listener lost its connection" in log


@pg_only
def test_a_lower_alert_id_committing_after_a_higher_one_is_still_streamed(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers' batches: the first takes its alert id, then commits after the second
    (held between its alert insert and the audit entry that follows, where the race is)."""
    dep.add_camera(CAMERA)
    dep.add_camera("gate-2")  # the two batches share no per-camera counter row
    with Services(dep) as services:
        _hotlist(services)
        services.alert_listener.start()
        holding, release = threading.Event(), threading.Event()
        first: list[int] = []

        append = dep.audit.append

        def gated(conn: Any, **entry: Any) -> Any:
            if threading.current_thread().name == "slow" and entry["action"] == "alerts.raised":
                holding.set()  # the alert row (and its id) is in this open transaction
                assert release.wait(30)
            return append(conn, **entry)

        monkeypatch.setattr(dep.audit, "append", gated)

        def slow_batch() -> None:
            _, alerts = services.ingest([factories.read(dep, PLATE, camera_id=CAMERA)], actor="t")
            first.extend(a.id for a in alerts)

        async def watch() -> list[int]:
            stop = asyncio.Event()

            async def disconnected() -> bool:
                return stop.is_set()

            stream = alert_events(
                db=dep.db,
                broker=services.broker,
                cursor=0,
                disconnected=disconnected,
                still_allowed=lambda: True,
                payload=lambda alert: alert.payload(),
            )
            got: list[int] = []

            async def read() -> None:
                async for chunk in stream:
                    got.extend(
                        int(line[4:])
                        for line in chunk.decode().splitlines()
                        if line.startswith("id: ")
                    )

            reader = asyncio.create_task(read())
            slow = threading.Thread(target=slow_batch, name="slow")
            slow.start()
            assert await asyncio.to_thread(holding.wait, 30)
            read_in = factories.read(dep, PLATE, camera_id="gate-2")
            _, second = await asyncio.to_thread(services.ingest, [read_in], actor="t")
            deadline = time.monotonic() + 30
            while second[0].id not in got and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            release.set()
            await asyncio.to_thread(slow.join, 30)
            while len(got) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # anything doubled would come now
            stop.set()
            services.broker.notify()
            await asyncio.wait_for(reader, 30)
            assert first and first[0] < second[0].id  # the lower id did commit last
            return got

        got = run_async(watch())
        assert got == [max(got), min(got)] and len(set(got)) == 2, got


def test_a_stream_open_while_the_server_stops_ends_quietly(dep: Deployment) -> None:
    """uvicorn does not wait for endless responses: a stream can still be running when the
    event loop's thread pool is shut down. It ends (the client reconnects elsewhere) instead of
    raising "Exception in ASGI application"; any other RuntimeError still raises."""

    async def run(*, stopping: bool) -> list[bytes]:
        async def disconnected() -> bool:
            return False

        def allowed() -> bool:
            raise RuntimeError("a defect of the caller's check")

        if stopping:  # what asyncio.run does at the end of the server's loop
            await asyncio.get_running_loop().shutdown_default_executor()
        return [
            chunk
            async for chunk in alert_events(
                db=dep.db,
                broker=AlertBroker(),
                cursor=0,
                disconnected=disconnected,
                still_allowed=allowed,
                payload=lambda alert: alert.payload(),
            )
        ]

    assert run_async(run(stopping=True)) == [b": connected\n\n"]
    with pytest.raises(RuntimeError, match="a defect of the caller's check"):
        run_async(run(stopping=False))


def test_a_right_lost_between_the_check_and_the_look_sends_nothing(dep: Deployment) -> None:
    """The key is revoked, and then an alert recorded, in the moment between the stream's
    check of its caller and its look for alerts (the order a loaded server can interleave
    them): the alert is found by the look, but not sent."""
    dep.add_camera(CAMERA)
    with Services(dep) as services:
        _hotlist(services)
        checks: list[bool] = []

        def allowed() -> bool:
            if checks and not checks[-1]:
                checks.append(False)  # revoked: stays so
            elif len(checks) == 1:  # the second check passes, and the right goes right after
                read_in = factories.read(dep, PLATE, camera_id=CAMERA)
                _, raised = services.ingest([read_in], actor="t")
                assert len(raised) == 1
                checks.extend([True, False])
                return True
            else:
                checks.append(True)
            return checks[-1]

        async def disconnected() -> bool:
            return False

        async def watch() -> list[bytes]:
            stream = alert_events(
                db=dep.db,
                broker=AlertBroker(),
                cursor=0,
                disconnected=disconnected,
                still_allowed=allowed,
                payload=lambda alert: alert.payload(),
            )
            return [chunk async for chunk in stream]

        chunks = run_async(watch())
        assert _alert_count(dep.db) == 1 and checks[:2] == [True, True]
        assert not any(b"event: alert" in chunk for chunk in chunks), chunks
