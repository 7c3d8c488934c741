"""Device health reports and the alerts they raise: a signed report is kept (the latest only),
refused when unsigned or for another device's camera; /metrics shows the gauges; a camera
whose frames stop raises exactly one silent-camera alert, visible in /alerts, the SSE stream
and a webhook receiver, which clears when frames return; the daytime rule for reads; the spool
backlog alert; and hotlist figures (transparency report, outcomes) are untouched by them."""

from __future__ import annotations

import importlib.util
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import insert, select

from privplate.alerts.device_alerts import check_health, daytime
from privplate.alerts.webhooks import verify_body
from privplate.api import create_app
from privplate.deployment import Deployment
from privplate.devices import DeviceKey, registry
from privplate.edge.health import HealthReporter
from privplate.edge.spool import Spool
from privplate.edge.uplink import DeviceClient
from privplate.identity.roles import Role
from privplate.settings import HealthSettings
from privplate.store.health_models import CameraHealth, DeviceHealth, HealthEpisode
from privplate.store.outbox_models import WebhookDelivery
from privplate.store.server_models import Alert, Webhook
from tests.api_support import CAMERA, DEVICE, Api, make_users
from tests.migration_support import assert_migration_matches_model
from tests.webhook_support import Receiver, wait_for

SHA = "ab" * 32


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def report(
    *,
    cameras: list[str] | None = None,
    last_frame: datetime | None = None,
    last_read: datetime | None = None,
    fps: float = 5.0,
    spool_depth: int = 0,
    spool_age: float | None = None,
    dropped: int = 0,
) -> bytes:
    moment = datetime.now(UTC)
    frame = last_frame or moment
    body: dict[str, Any] = {
        "version": "0.1.0",
        "interval_seconds": 60,
        "models": {"yolov8n-plate-640.onnx": SHA},
        "cameras": [
            {
                "camera_id": c,
                "frames_per_second": fps,
                "last_frame_at": _iso(frame),
                "last_read_at": _iso(last_read),
                "dropped_reads": dropped,
            }
            for c in (cameras or [CAMERA])
        ],
        "spool_depth": spool_depth,
        "spool_oldest_age_seconds": spool_age,
        "clock_offset_seconds": 0.25,
    }
    return json.dumps(body).encode()


def send(api: Api, body: bytes, **kwargs: Any) -> httpx.Response:
    return api.signed("POST", "/devices/health", body, **kwargs)


def rows(dep: Deployment, model: Any) -> list[Any]:
    with dep.db.read() as conn:
        return list(conn.execute(select(model)).all())


def alerts_of(api: Api, role: Role = Role.OPERATOR) -> list[dict[str, Any]]:
    answer = api.call(role, "GET", "/alerts")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def device_alerts(api: Api) -> list[dict[str, Any]]:
    return [a for a in alerts_of(api) if a["kind"] != "hotlist_hit"]


def health(**changes: Any) -> HealthSettings:
    base: dict[str, Any] = {"silent_after_minutes": 10, "daytime_hours": "00:00-24:00"}
    return HealthSettings.model_validate({**base, **changes})


def check(
    api: Api, settings: HealthSettings | None = None, at: datetime | None = None
) -> list[Any]:
    return check_health(db=api.dep.db, audit=api.dep.audit, settings=settings or health(), now=at)


# -- the report ---------------------------------------------------------------------------------


def test_a_signed_report_is_kept_latest_only(api: Api) -> None:
    first = send(api, report(fps=4.0, dropped=1, spool_depth=7, spool_age=12.5))
    assert first.status_code == 200, first.text
    assert abs(first.json()["clock_offset_seconds"]) < 5
    second = send(api, report(fps=9.5, dropped=3))
    assert second.status_code == 200, second.text
    (device,) = rows(api.dep, DeviceHealth)
    assert device.device_id == DEVICE and device.spool_depth == 0
    assert device.version == "0.1.0" and json.loads(device.models) == {
        "yolov8n-plate-640.onnx": SHA
    }
    assert device.reported_offset_seconds == 0.25
    (camera,) = rows(api.dep, CameraHealth)
    assert (camera.camera_id, camera.frames_per_second, camera.dropped_reads) == (CAMERA, 9.5, 3)
    assert camera.first_reported_at <= camera.received_at


def test_device_times_are_moved_to_the_servers_clock(api: Api) -> None:
    # The device's clock runs 100 s behind: its signed time and its frame times alike.
    behind = timedelta(seconds=100)
    frame = datetime.now(UTC) - behind
    signed = api.device.sign_request(
        "POST", "/devices/health", body := report(last_frame=frame), now=time.time() - 100
    )
    answer = api.client.post(
        "/devices/health", content=body, headers={**signed, "Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    assert 99 <= answer.json()["clock_offset_seconds"] <= 105
    (camera,) = rows(api.dep, CameraHealth)
    assert abs((camera.last_frame_at - datetime.now(UTC)).total_seconds()) < 10


def test_another_devices_camera_unsigned_and_tampered_reports_are_refused(api: Api) -> None:
    api.dep.add_camera("gate-2")
    foreign = send(api, report(cameras=["gate-2"]))
    assert foreign.status_code == 403, foreign.text
    assert "gate-2" in foreign.text
    twice = send(api, report(cameras=[CAMERA, CAMERA]))
    assert twice.status_code == 400, twice.text
    unsigned = api.client.post(
        "/devices/health", content=report(), headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401
    body = report()
    signed = api.device.sign_request("POST", "/devices/health", body)
    tampered = api.client.post(
        "/devices/health",
        content=body.replace(b'"spool_depth": 0', b'"spool_depth": 1'),
        headers={**signed, "Content-Type": "application/json"},
    )
    assert tampered.status_code == 401
    stranger = send(api, report(), key=DeviceKey.generate(DEVICE))
    assert stranger.status_code == 401
    assert rows(api.dep, DeviceHealth) == [] and rows(api.dep, CameraHealth) == []
    refused = [e for e in api.dep.audit.entries() if e.action == "health.refused"]
    assert len(refused) == 2  # the foreign camera and the camera named twice


def test_a_report_is_bounded_and_has_no_field_for_anything_else(api: Api) -> None:
    many = json.loads(report())
    many["cameras"] = many["cameras"] * 65
    assert send(api, json.dumps(many).encode()).status_code == 422
    extra = json.loads(report())
    extra["cameras"][0]["plate"] = "7WAN123"
    assert send(api, json.dumps(extra).encode()).status_code == 422
    bad_digest = json.loads(report())
    bad_digest["models"] = {"x.onnx": "not-a-digest"}
    assert send(api, json.dumps(bad_digest).encode()).status_code == 422
    assert rows(api.dep, DeviceHealth) == []


def test_metrics_show_each_cameras_health_and_no_read_counts(api: Api) -> None:
    frame = datetime.now(UTC) - timedelta(seconds=30)
    assert send(api, report(last_frame=frame, fps=6.5, dropped=2, spool_depth=4)).status_code == 200
    text = api.call(Role.AUDITOR, "GET", "/metrics").text
    labels = f'camera="{CAMERA}",device="{DEVICE}"'
    assert f"privplate_camera_frames_per_second{{{labels}}} 6.500" in text
    assert f"privplate_camera_dropped_reads{{{labels}}} 2" in text
    assert f'privplate_device_spool_depth{{device="{DEVICE}"}} 4' in text
    assert f"privplate_camera_last_read_age_seconds{{{labels}}} NaN" in text
    age_line = next(
        line for line in text.splitlines() if line.startswith("privplate_camera_last_frame_age")
    )
    assert 29 <= float(age_line.split()[-1]) < 120
    for family in ("device_clock_offset_seconds", "device_report_age_seconds", "device_info"):
        assert f"privplate_{family}{{" in text, family
    assert f'sha256="{SHA}"' in text
    # Per camera: its health, never how many reads it made.
    per_camera = {line.split("{")[0] for line in text.splitlines() if "camera=" in line}
    assert per_camera == {
        "privplate_camera_frames_per_second",
        "privplate_camera_last_frame_age_seconds",
        "privplate_camera_last_read_age_seconds",
        "privplate_camera_dropped_reads",
    }


# -- silent cameras -----------------------------------------------------------------------------


def test_a_stalled_camera_raises_one_alert_and_clears_when_frames_return(api: Api) -> None:
    t = datetime.now(UTC)
    assert send(api, report(last_frame=t - timedelta(minutes=4))).status_code == 200
    assert check(api, at=t) == []  # 4 minutes: not yet
    assert send(api, report(last_frame=t - timedelta(minutes=11))).status_code == 200
    (raised,) = check(api, at=t)
    assert (raised.kind, raised.camera_id, raised.cause) == ("silent_camera", CAMERA, "no_frame")
    for later in (1, 2, 3):  # the same episode: no second alert
        assert check(api, at=t + timedelta(minutes=later)) == []
    (listed,) = device_alerts(api)
    assert listed["id"] == raised.id and listed["device_id"] == DEVICE
    assert listed["read_id"] is None and listed["cleared_at"] is None
    assert "no frame" in listed["reason"]

    assert send(api, report(last_frame=datetime.now(UTC))).status_code == 200
    (cleared,) = check(api, at=datetime.now(UTC))
    assert cleared.clears == raised.id and cleared.kind == "silent_camera"
    first, clearing = device_alerts(api)
    assert first["cleared_at"] is not None and clearing["clears"] == raised.id
    assert rows(api.dep, HealthEpisode) == []
    actions = [e.action for e in api.dep.audit.entries()]
    assert actions.count("health.alert") == 1 and actions.count("health.cleared") == 1
    assert "alerts.raised" not in actions


def test_a_device_whose_reports_stop_silences_all_its_cameras(api: Api) -> None:
    api.dep.add_camera("gate-2")
    key = DeviceKey.generate("edge-2")
    registry.register_device(
        db=api.dep.db,
        audit=api.dep.audit,
        actor="test",
        device_id="edge-2",
        public_key=key.public_key,
        cameras=["gate-2"],
    )
    assert send(api, report()).status_code == 200
    assert send(api, report(cameras=["gate-2"]), key=key).status_code == 200
    t = datetime.now(UTC)
    assert check(api, at=t + timedelta(minutes=5)) == []
    # edge-2 keeps reporting, edge-1 went quiet.
    with api.dep.db.write() as conn:
        conn.execute(
            DeviceHealth.__table__.update()  # type: ignore[attr-defined]
            .where(DeviceHealth.device_id == "edge-2")
            .values(received_at=t + timedelta(minutes=10))
        )
        conn.execute(
            CameraHealth.__table__.update()  # type: ignore[attr-defined]
            .where(CameraHealth.camera_id == "gate-2")
            .values(last_frame_at=t + timedelta(minutes=10))
        )
    raised = check(api, at=t + timedelta(minutes=11))
    assert [(a.camera_id, a.cause) for a in raised] == [(CAMERA, "no_report")]


def test_reads_are_expected_only_in_daytime_hours() -> None:
    settings = HealthSettings(daytime_hours="07:00-19:00", time_zone="America/Chicago")
    noon = datetime(2026, 7, 1, 17, 0, tzinfo=UTC)  # 12:00 in Chicago (CDT)
    assert daytime(settings, noon) == (True, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert daytime(settings, datetime(2026, 7, 2, 3, 0, tzinfo=UTC))[0] is False  # 22:00
    night = HealthSettings(daytime_hours="22:00-06:00")
    inside, began = daytime(night, datetime(2026, 7, 2, 1, 0, tzinfo=UTC))
    assert inside and began == datetime(2026, 7, 1, 22, 0, tzinfo=UTC)
    assert daytime(HealthSettings(daytime_hours="00:00-24:00"), noon) == (True, None)


def test_no_read_in_daytime_raises_and_a_read_clears_it(api: Api) -> None:
    settings = health(
        daytime_hours="07:00-19:00",
        time_zone="UTC",
        no_read_after_minutes=120,
        silent_after_minutes=30,
    )
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def at(hour: int, minute: int = 0) -> datetime:
        return today + timedelta(hours=hour, minutes=minute)

    last_read = at(18) - timedelta(days=1)  # yesterday evening

    def report_at(moment: datetime, read: datetime) -> None:
        # Frames keep coming; the report is as of ``moment`` (rows set as the server keeps
        # them, so the check can run at any hour of the day).
        assert send(api, report(last_read=read)).status_code == 200
        with api.dep.db.write() as conn:
            conn.execute(DeviceHealth.__table__.update().values(received_at=moment))  # type: ignore[attr-defined]
            conn.execute(
                CameraHealth.__table__.update().values(  # type: ignore[attr-defined]
                    received_at=moment,
                    last_frame_at=moment,
                    first_reported_at=moment - timedelta(days=2),
                )
            )

    report_at(at(3), last_read)
    assert check(api, settings, at(3)) == []  # night: no reads expected
    report_at(at(8), last_read)
    assert check(api, settings, at(8)) == []  # an hour into the day: not yet
    report_at(at(9, 30), last_read)
    (raised,) = check(api, settings, at(9, 30))
    assert raised.cause == "no_read"
    report_at(at(20), last_read)
    assert check(api, settings, at(20)) == []  # nightfall does not clear it: a read does
    report_at(at(20, 5), at(20, 1))
    (cleared,) = check(api, settings, at(20, 5))
    assert cleared.clears == raised.id


def test_a_spool_backlog_raises_one_alert_and_clears(api: Api) -> None:
    settings = health(spool_backlog_reads=1000, spool_backlog_minutes=30)
    assert send(api, report(spool_depth=500, spool_age=60)).status_code == 200
    assert check(api, settings) == []
    assert send(api, report(spool_depth=5000, spool_age=60)).status_code == 200
    (deep,) = check(api, settings)
    assert (deep.kind, deep.device_id, deep.cause) == ("spool_backlog", DEVICE, "spool_depth")
    assert send(api, report(spool_depth=10, spool_age=3600)).status_code == 200
    assert check(api, settings) == []  # still backed up (now by age): the same episode
    assert send(api, report(spool_depth=0)).status_code == 200
    (cleared,) = check(api, settings)
    assert cleared.clears == deep.id
    text = api.call(Role.AUDITOR, "GET", "/metrics").text
    assert 'privplate_device_alerts_open{kind="spool_backlog"}' not in text


def test_device_alerts_leave_hotlist_figures_alone(api: Api) -> None:
    from privplate.transparency import build_report, period_ending

    start, end = period_ending(datetime.now(UTC).date(), 7)
    before = build_report(api.dep, start=start, end=end)["alerts"]
    assert send(api, report(last_frame=datetime.now(UTC) - timedelta(hours=1))).status_code == 200
    (raised,) = check(api)
    after = build_report(api.dep, start=start, end=end)["alerts"]
    assert after == before and after["total"] == 0
    outcome = api.call(
        Role.OPERATOR, "POST", f"/alerts/{raised.id}/outcome", json={"outcome": "confirmed"}
    )
    assert outcome.status_code == 404


# -- the schema ---------------------------------------------------------------------------------


def test_migration_matches_the_models(home: Path) -> None:
    for table in ("device_health", "camera_health", "health_episodes"):
        assert_migration_matches_model(home, before="0018_mqtt_outbox", table=table)


def test_the_alerts_migration_keeps_hotlist_alerts_and_their_deliveries(home: Path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from privplate.store.database import MIGRATIONS_DIR
    from privplate.store.models import Base

    with Deployment.open(home) as dep:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        t = datetime.now(UTC)
        with dep.db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0018_mqtt_outbox")
            conn.commit()
            hook = uuid.uuid4()
            conn.execute(
                insert(Webhook.__table__).values(  # type: ignore[arg-type]
                    id=hook,
                    kind="http",
                    url="http://127.0.0.1:9/",
                    secret_box=b"x",
                    created_by="t",
                    created_at=t,
                    active=True,
                )
            )
            alert = conn.execute(
                Alert.__table__.insert()  # type: ignore[attr-defined]
                .values(
                    read_id=uuid.uuid4(),
                    observed_at=t,
                    camera_id="gate-1",
                    hotlist_id=uuid.uuid4(),
                    entry_id=uuid.uuid4(),
                    via_alternate=False,
                    confidence=0.9,
                    created_at=t,
                )
                .returning(Alert.__table__.c.id)  # type: ignore[attr-defined]
            ).scalar_one()
            conn.execute(
                insert(WebhookDelivery.__table__).values(  # type: ignore[arg-type]
                    id=uuid.uuid4(),
                    alert_id=alert,
                    webhook_id=hook,
                    status="pending",
                    attempts=0,
                    next_attempt_at=t,
                    created_at=t,
                )
            )
            conn.commit()
            command.upgrade(cfg, "head")
            conn.commit()
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert [d for d in diffs if "'alerts'" in repr(d) or "<alerts>" in repr(d)] == []
        with dep.db.read() as conn:
            kept = conn.execute(select(Alert.kind, Alert.confidence)).all()
            deliveries = conn.execute(select(WebhookDelivery.alert_id)).scalars().all()
        assert kept == [("hotlist_hit", 0.9)] and deliveries == [alert]


# -- end to end: a real server, its leader's check, SSE and a webhook receiver -------------------


@dataclass
class Served:
    url: str
    keys: dict[Role, str]
    device: DeviceKey
    home: Path
    #: The MQTT topic prefix of the run (the real broker), None without the mqtt extra.
    mqtt_prefix: str | None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(home: Path) -> Iterator[Served]:
    config = home / "privplate.toml"
    extra = (
        "\n[health]\ncheck_interval_seconds = 5\nsilent_after_minutes = 1\n"
        'daytime_hours = "00:00-24:00"\n'
    )
    prefix: str | None = None
    if importlib.util.find_spec("paho") is not None:
        # The real broker: no discovery and nothing retained but the status, cleared after.
        prefix = f"pphealth-{uuid.uuid4().hex[:10]}"
        extra += (
            f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = 1883\ntopic_prefix = "{prefix}"\n'
            f'discovery_prefix = "ha{prefix}"\ndiscovery = false\nretain = false\n'
        )
    config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with Deployment.open(home, actor="test") as dep:
        dep.add_camera(CAMERA)
        keys, _ = make_users(dep)
        device = DeviceKey.generate(DEVICE)
        registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor="test",
            device_id=DEVICE,
            public_key=device.public_key,
            cameras=[CAMERA],
        )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(home), host="127.0.0.1", port=port, log_level="warning", log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the server start", timeout=30)
    try:
        yield Served(f"http://127.0.0.1:{port}", keys, device, home, prefix)
    finally:
        server.should_exit = True
        thread.join(15)
        if prefix is not None:
            _clear_status(prefix)


class _Subscriber:
    """A client of the real broker keeping the messages of one topic."""

    def __init__(self, topic: str) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[bytes] = []
        subscribed = threading.Event()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:8]}",
        )
        self.client.on_connect = lambda client, *_: client.subscribe(topic, 1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.append(bytes(msg.payload))
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()
        assert subscribed.wait(10), "the test subscriber could not subscribe"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _clear_status(prefix: str) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    client.publish(f"{prefix}/status", b"", 1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _sse(url: str, key: str, events: queue.Queue[dict[str, Any]], ready: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(timeout=httpx.Timeout(60.0, read=60.0)) as client,
        client.stream("GET", f"{url}/alerts/stream", headers=headers) as answer,
    ):
        data = ""
        for line in answer.iter_lines():
            ready.set()
            if line.startswith("data: "):
                data = line[6:]
            elif line == "" and data:
                events.put(json.loads(data))
                data = ""
                if events.qsize() >= 2:
                    return


@dataclass(frozen=True)
class Cam:
    camera_id: str
    frames_per_second: float
    last_frame_at: datetime | None
    last_read_at: datetime | None
    dropped_reads: int


def test_a_stalled_source_reaches_alerts_sse_and_webhooks_then_clears(
    served: Served, tmp_path: Path
) -> None:
    receiver = Receiver()
    mqtt = (
        _Subscriber(f"{served.mqtt_prefix}/camera/{CAMERA}/health_event")
        if served.mqtt_prefix
        else None
    )
    try:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            created = client.post(
                "/webhooks",
                json={"url": receiver.url + "/hook"},
                headers={"Authorization": f"Bearer {served.keys[Role.ADMIN]}"},
            )
            assert created.status_code == 201, created.text
            secret = bytes.fromhex(created.json()["secret"])
            events: queue.Queue[dict[str, Any]] = queue.Queue()
            ready = threading.Event()
            threading.Thread(
                target=_sse,
                args=(served.url, served.keys[Role.OPERATOR], events, ready),
                daemon=True,
            ).start()
            assert ready.wait(10), "the SSE stream did not open"

            # The edge's own reporter: its camera's source stalled two minutes ago.
            stalled = [Cam(CAMERA, 0.0, datetime.now(UTC) - timedelta(minutes=2), None, 0)]
            cameras = stalled
            spool = Spool(tmp_path / "spool.db")
            reporter = HealthReporter(
                DeviceClient(served.url, served.device, timeout=10),
                cameras=lambda: cameras,
                spool=spool,
                models={"yolov8n-plate-640.onnx": SHA},
            )
            reporter.send_once()

            raised = events.get(timeout=30)  # the leader checks every 5 s
            assert raised["kind"] == "silent_camera" and raised["camera_id"] == CAMERA
            assert raised["cause"] == "no_frame" and raised["clears"] is None
            wait_for(lambda: len(receiver.receipts) >= 1, "the webhook delivery", timeout=30)
            hook = receiver.receipts[0]
            assert verify_body(
                secret,
                hook.headers["X-Privplate-Timestamp"],
                hook.body,
                hook.headers["X-Privplate-Signature"],
            )
            assert json.loads(hook.body)["alert"]["id"] == raised["id"]

            # Still stalled at the next checks: no second alert.
            time.sleep(6)
            assert events.empty()
            cameras = [Cam(CAMERA, 5.0, datetime.now(UTC), None, 0)]
            reporter.send_once()
            cleared = events.get(timeout=30)
            assert cleared["kind"] == "silent_camera" and cleared["clears"] == raised["id"]
            wait_for(lambda: len(receiver.receipts) >= 2, "the clearing's delivery", timeout=30)
            listed = client.get(
                "/alerts", headers={"Authorization": f"Bearer {served.keys[Role.OPERATOR]}"}
            ).json()
            assert [a["id"] for a in listed] == [raised["id"], cleared["id"]]
            assert listed[0]["cleared_at"] is not None
            spool.close()
        if mqtt is not None:
            wait_for(lambda: len(mqtt.messages) >= 2, "the MQTT events", timeout=30)
            published = [json.loads(m) for m in mqtt.messages]
            assert [(e["event_type"], e["alert_id"]) for e in published] == [
                ("silent_camera", raised["id"]),
                ("silent_camera_cleared", cleared["id"]),
            ]
            assert published[0]["cause"] == "no_frame" and published[1]["clears"] == raised["id"]
            assert not {"hotlist", "entry_id", "read_id"} & set(published[0])
    finally:
        receiver.close()
        if mqtt is not None:
            mqtt.close()


# -- the edge's reporter and the settings -------------------------------------------------------


def test_the_reporter_sends_counts_and_times_only(api: Api, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    try:
        cams = [Cam(CAMERA, 7.25, datetime.now(UTC), datetime.now(UTC), 4)]
        reporter = HealthReporter(
            DeviceClient("http://127.0.0.1:9", api.device, timeout=2),
            cameras=lambda: cams,
            spool=spool,
            models={"yolov8n-plate-640.onnx": SHA},
            clock_offset=lambda: -0.5,
        )
        sent = json.loads(reporter.body())
        assert set(sent) == {
            "version",
            "interval_seconds",
            "models",
            "cameras",
            "spool_depth",
            "clock_offset_seconds",
        }
        assert set(sent["cameras"][0]) == {
            "camera_id",
            "frames_per_second",
            "last_frame_at",
            "last_read_at",
            "dropped_reads",
        }
        assert sent["spool_depth"] == 0 and sent["version"]
        # Nothing listens on port 9: the report is not sent, and the reporter says so.
        from privplate.edge.uplink import UplinkError

        with pytest.raises(UplinkError):
            reporter.send_once()
        assert reporter.sent == 0
    finally:
        spool.close()


def test_health_settings_are_checked_at_start(tmp_path: Path) -> None:
    from privplate.errors import ConfigError
    from privplate.settings import load_settings

    for bad in ('daytime_hours = "7-19"', 'time_zone = "Mars/Olympus"', "silent_after_minutes = 0"):
        home = tmp_path / bad.split()[0]
        home.mkdir()
        (home / "privplate.toml").write_text(f"[health]\n{bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match="health"):
            load_settings(home)


def test_model_digests_are_those_of_the_files_the_edge_loads(tmp_path: Path) -> None:
    import os

    from privplate.edge.health import model_digests
    from privplate.settings import load_settings
    from privplate.vision.models import load_registry

    if not os.environ.get("PRIVPLATE_MODELS_DIR"):
        pytest.skip("needs PRIVPLATE_MODELS_DIR (the shared model files)")
    settings = load_settings(tmp_path)
    digests = model_digests(settings)
    registry = load_registry()
    expected = {
        f.filename: f.sha256
        for name in (settings.edge.detector, settings.edge.recognizer)
        for f in registry[name].files
    }
    assert digests == expected
