"""MQTT against the real Mosquitto (127.0.0.1:1883): Home Assistant discovery checked field by
field against HA's discovery schema, an alert on a hotlist hit through the one ingest path and
nothing for a non-hit, retained discovery cleared when a camera is deactivated, delivery that
survives an unreachable broker (outbox retries, then once), and no plate in any topic or
payload. Each test uses topic and discovery prefixes of its own, so runs do not interfere.

Skipped where no broker listens, except under CI."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, update

from privplate.alerts.webhooks import MQTT_ENDPOINT_ID
from privplate.deployment import Deployment
from privplate.errors import ConfigError, InvalidRequest, NotFound
from privplate.services import Services
from privplate.settings import load_settings
from privplate.store.database import MIGRATIONS_DIR
from privplate.store.health_models import CameraHealth
from privplate.store.models import Base
from privplate.store.server_models import Webhook
from tests import factories
from tests.cluster_support import free_port
from tests.ha_discovery import check_discovery
from tests.mqtt_support import BROKER, mqtt_rows, skip_without_broker
from tests.privacy import hits_in_bytes
from tests.webhook_support import hotlist_of, plates, wait_for

paho = pytest.importorskip("paho.mqtt.client")

skip_without_broker()


# -- a subscriber, as Home Assistant would be ---------------------------------------------------


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class Capture:
    """Subscribes to ``topics`` and keeps every message it gets (retained ones first)."""

    def __init__(self, *topics: str) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(
            callback_api_version=paho.CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:8]}",
        )

        def on_connect(client: Any, *_: Any) -> None:
            client.subscribe([(t, 1) for t in topics])

        def on_subscribe(*_: Any) -> None:
            subscribed.set()

        def on_message(_client: Any, _userdata: Any, msg: Any) -> None:
            with self._lock:
                self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect(*BROKER)
        self.client.loop_start()
        assert subscribed.wait(10), "the test subscriber could not subscribe"

    def all(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def on(self, topic: str) -> list[Message]:
        return [m for m in self.all() if m.topic == topic]

    def latest(self) -> dict[str, bytes]:
        """The last payload seen per topic."""
        return {m.topic: m.payload for m in self.all()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass(frozen=True)
class Prefixes:
    topic: str
    discovery: str


@pytest.fixture
def prefixes(monkeypatch: pytest.MonkeyPatch) -> Prefixes:
    run = uuid.uuid4().hex[:10]
    found = Prefixes(f"pptest-{run}", f"hatest-{run}")
    for name, value in {
        "ENABLED": "true",
        "HOST": BROKER[0],
        "PORT": str(BROKER[1]),
        "TOPIC_PREFIX": found.topic,
        "DISCOVERY_PREFIX": found.discovery,
        "STATE_INTERVAL_SECONDS": "0.2",
        "ALERT_ON_SECONDS": "1",
    }.items():
        monkeypatch.setenv(f"PRIVPLATE_MQTT__{name}", value)
    monkeypatch.setenv("PRIVPLATE_WEBHOOKS__FIRST_RETRY_SECONDS", "0.1")
    return found


@pytest.fixture
def capture(prefixes: Prefixes) -> Iterator[Capture]:
    found = Capture(f"{prefixes.topic}/#", f"{prefixes.discovery}/#")
    yield found
    found.close()
    clear_retained(prefixes)


def clear_retained(prefixes: Prefixes) -> None:
    """Leave nothing retained behind on the shared broker."""
    sweep = Capture(f"{prefixes.topic}/#", f"{prefixes.discovery}/#")
    threading.Event().wait(0.3)  # the retained messages arrive right after the subscription
    for topic in {m.topic for m in sweep.all() if m.retain and m.payload}:
        sweep.client.publish(topic, b"", 1, retain=True).wait_for_publish(5)
    sweep.close()


def configs_of(capture: Capture, discovery: str) -> dict[str, dict[str, Any]]:
    """The current (non-empty) discovery configs, by topic."""
    return {
        t: json.loads(p)
        for t, p in capture.latest().items()
        if t.startswith(f"{discovery}/") and t.endswith("/config") and p
    }


def assert_no_plates(capture: Capture, used: list[str]) -> None:
    everything = b"\n".join(m.topic.encode() + b"\0" + m.payload for m in capture.all())
    assert everything, "nothing was captured: the scan would prove nothing"
    assert hits_in_bytes(everything, used) == []


# -- discovery ---------------------------------------------------------------------------------


def test_discovery_follows_home_assistant_schema_and_is_retained(
    home: Path, prefixes: Prefixes, capture: Capture
) -> None:
    with Deployment.open(home) as dep:
        factories.camera(dep, "gate-1")
        factories.camera(dep, "lot.b")  # a '.' is not allowed in a discovery id
        with Services(dep) as services:
            services.webhooks.start()
            wait_for(lambda: len(configs_of(capture, prefixes.discovery)) == 12, "12 configs")
            configs = configs_of(capture, prefixes.discovery)
            components = [
                check_discovery(t, c, discovery=prefixes.discovery, prefix=prefixes.topic)
                for t, c in configs.items()
            ]
            per_camera = ["sensor", "sensor", "binary_sensor", "binary_sensor", "binary_sensor"]
            assert sorted(components) == sorted([*per_camera, "event"] * 2)
            unique_ids = [c["unique_id"] for c in configs.values()]
            assert len(set(unique_ids)) == len(unique_ids)
            devices = {c["device"]["identifiers"][0] for c in configs.values()}
            assert len(devices) == 2  # one device per camera, six entities each
            by_object = {t.split("/")[-2]: c for t, c in configs.items() if "lot" in t}
            assert by_object["last_contact"]["device_class"] == "timestamp"
            assert by_object["reads_per_minute"]["state_class"] == "measurement"
            assert by_object["reads_per_minute"]["unit_of_measurement"] == "reads/min"
            assert by_object["hotlist_alert_event"]["event_types"] == ["hotlist_alert"]
            assert by_object["hotlist_alert"]["off_delay"] == 1
            # Device alerts: ON while open, OFF when cleared (the server says; no off_delay).
            for kind in ("silent_camera", "spool_backlog"):
                assert by_object[kind]["device_class"] == "problem"
                assert "off_delay" not in by_object[kind]
                assert by_object[kind]["state_topic"] == f"{prefixes.topic}/camera/lot.b/{kind}"
            assert (
                by_object["hotlist_alert"]["state_topic"] == f"{prefixes.topic}/camera/lot.b/alert"
            )
            # Availability: "online" while connected (the will says "offline").
            wait_for(
                lambda: capture.latest().get(f"{prefixes.topic}/status") == b"online", "online"
            )

            # The typed API device health will use: one retained topic per key.
            assert services.mqtt is not None
            assert services.mqtt.publish_camera_state("gate-1", {"temperature_c": 41.5})
            wait_for(
                lambda: (
                    capture.latest().get(f"{prefixes.topic}/camera/gate-1/temperature_c") == b"41.5"
                ),
                "a camera state value",
            )
            with pytest.raises(InvalidRequest):
                services.mqtt.publish_camera_state("gate-1", {"alert": "ON"})
            with pytest.raises(InvalidRequest):
                services.mqtt.publish_camera_state("gate-1", {"a/#": 1})

            # Retained: a subscriber that comes later (Home Assistant after a restart) gets
            # every config at once, flagged retained.
            late = Capture(f"{prefixes.discovery}/#")
            try:
                wait_for(lambda: len(late.all()) >= 12, "retained configs for a late subscriber")
                assert all(m.retain for m in late.all())
                assert {m.topic for m in late.all()} == set(configs)
            finally:
                late.close()
        # A graceful stop says "offline".
        wait_for(lambda: capture.latest().get(f"{prefixes.topic}/status") == b"offline", "offline")


def test_deactivated_cameras_lose_their_retained_discovery(
    home: Path, prefixes: Prefixes, capture: Capture
) -> None:
    with Deployment.open(home) as dep:
        for camera in ("gate-1", "gate-2", "gate-3"):
            factories.camera(dep, camera)
        with Services(dep) as services:
            services.webhooks.start()
            wait_for(lambda: len(configs_of(capture, prefixes.discovery)) == 18, "18 configs")
            gone = [t for t in configs_of(capture, prefixes.discovery) if "gate-2" in t]
            assert len(gone) == 6
            silent = f"{prefixes.topic}/camera/gate-2/silent_camera"
            wait_for(lambda: capture.latest().get(silent) == b"OFF", "gate-2's sensor state")
            # Through the service function, in this process: cleared at once.
            dep.deactivate_camera("gate-2")
            wait_for(
                lambda: all(capture.latest()[t] == b"" for t in gone), "gate-2's configs cleared"
            )
            assert capture.latest()[silent] == b""  # its retained state goes with them
            # By another process (the CLI's `cameras deactivate`): at the next interval.
            with Deployment.open(home, actor="cli") as other:
                other.deactivate_camera("gate-3")
            wait_for(lambda: len(configs_of(capture, prefixes.discovery)) == 6, "gate-3 cleared")
            # And a camera another process adds is announced the same way.
            with Deployment.open(home, actor="cli") as other:
                factories.camera(other, "gate-4")
            wait_for(lambda: len(configs_of(capture, prefixes.discovery)) == 12, "gate-4 announced")
            with pytest.raises(NotFound):
                dep.deactivate_camera("gate-2")
        late = Capture(f"{prefixes.discovery}/#")
        try:
            wait_for(lambda: len(late.all()) >= 12, "the retained configs")
            threading.Event().wait(0.3)
            retained = {m.topic for m in late.all() if m.payload}
            assert retained and not [t for t in retained if "gate-2" in t or "gate-3" in t]
            assert {t.split("/")[2] for t in retained} == {
                f"{prefixes.topic}_gate-1",
                f"{prefixes.topic}_gate-4",
            }
        finally:
            late.close()


# -- alerts ------------------------------------------------------------------------------------


def test_a_hotlist_hit_is_published_and_a_non_hit_is_not(
    home: Path, prefixes: Prefixes, capture: Capture
) -> None:
    wanted, passing = plates(1), ["7PASS99"]
    events = f"{prefixes.topic}/camera/gate-1/event"
    alert_state = f"{prefixes.topic}/camera/gate-1/alert"
    with Deployment.open(home) as dep, Services(dep) as services:
        hotlist_of(services, wanted)
        services.webhooks.start()
        wait_for(lambda: len(configs_of(capture, prefixes.discovery)) == 6, "discovery")
        _, none = services.ingest([factories.read(dep, passing[0])], actor="edge-1")
        assert none == []
        _, alerts = services.ingest([factories.read(dep, wanted[0])], actor="edge-1")
        assert len(alerts) == 1
        wait_for(lambda: len(capture.on(events)) >= 1, "the alert event")
        wait_for(lambda: all(r.status == "delivered" for r in mqtt_rows(dep)), "row delivered")
        rows = mqtt_rows(dep)
        assert [(r.alert_id, r.status) for r in rows] == [(alerts[0].id, "delivered")]
        (event,) = capture.on(events)  # one event: none for the read that matched nothing
        assert not event.retain
        body = json.loads(event.payload)
        alert = alerts[0]
        assert body == {
            "event_type": "hotlist_alert",
            "delivery": str(rows[0].id),
            "alert_id": alert.id,
            "camera_id": "gate-1",
            "hotlist": "stolen",
            "entry_id": str(alert.entry_id),
            "reason": "reported stolen",
            "case_number": "C-0",
            "via_alternate": False,
            "confidence": 0.9,
            "observed_at": alert.observed_at.isoformat(),
            "created_at": alert.created_at.isoformat(),
        }
        # The binary sensor: ON with the alert, OFF once alert_on_seconds have passed.
        wait_for(lambda: b"ON" in [m.payload for m in capture.on(alert_state)], "alert ON")
        wait_for(lambda: capture.latest().get(alert_state) == b"OFF", "alert OFF")
        attributes = json.loads(capture.latest()[f"{alert_state}/attributes"])
        assert attributes["alert_id"] == alert.id and "event_type" not in attributes
        # Reads per minute and last contact come from what the server already has.
        rpm = f"{prefixes.topic}/camera/gate-1/reads_per_minute"
        wait_for(lambda: rpm in capture.latest(), "reads per minute")
        services.ingest([factories.read(dep, "8MORE11")], actor="edge-1")
        wait_for(lambda: float(capture.latest()[rpm] or 0) > 0, "reads counted")
        contact = capture.latest()[f"{prefixes.topic}/camera/gate-1/last_contact"]
        assert re.fullmatch(rb"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", contact)
    assert_no_plates(capture, [*wanted, *passing, "8MORE11"])


def _report(dep: Deployment, *, cameras: list[str], frame_age: float, spool: int = 0) -> None:
    """A health report of device edge-1 as the server keeps it (the signed route's service)."""
    from privplate.devices.health import CameraReport, HealthReport, record_report
    from privplate.devices.registry import list_devices

    (device,) = [d for d in list_devices(db=dep.db) if d.id == "edge-1"]
    moment = datetime.now(UTC)
    frame = moment - timedelta(seconds=frame_age)
    body = HealthReport(
        version="0.1.0",
        interval_seconds=60,
        cameras=[
            CameraReport(camera_id=c, frames_per_second=5, last_frame_at=frame) for c in cameras
        ],
        spool_depth=spool,
    )
    record_report(db=dep.db, device=device, report=body, signed_at=moment)


def test_device_alerts_drive_a_problem_sensor_per_camera(
    home: Path, prefixes: Prefixes, capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privplate.devices import DeviceKey, registry

    monkeypatch.setenv("PRIVPLATE_MQTT__STATE_INTERVAL_SECONDS", "3600")  # only alerts move them
    monkeypatch.setenv("PRIVPLATE_HEALTH__SPOOL_BACKLOG_READS", "100")
    topic = f"{prefixes.topic}/camera"
    with Deployment.open(home) as dep:
        for camera in ("gate-1", "gate-2"):
            factories.camera(dep, camera)
        registry.register_device(
            db=dep.db, audit=dep.audit, actor="test", device_id="edge-1",
            public_key=DeviceKey.generate("edge-1").public_key, cameras=["gate-1", "gate-2"],
        )  # fmt: skip
        with Services(dep) as services:
            services.webhooks.start()
            sensors = [f"{topic}/{c}/{k}" for c in ("gate-1", "gate-2")
                       for k in ("silent_camera", "spool_backlog")]  # fmt: skip
            wait_for(lambda: all(capture.latest().get(t) == b"OFF" for t in sensors), "all OFF")

            # gate-1's frames stopped 20 minutes ago; the device's spool backs up.
            _report(dep, cameras=["gate-1", "gate-2"], frame_age=0, spool=500)
            with dep.db.write() as conn:
                conn.execute(
                    update(CameraHealth)
                    .where(CameraHealth.camera_id == "gate-1")
                    .values(last_frame_at=datetime.now(UTC) - timedelta(minutes=20))
                )
            raised = {a.kind: a for a in services.check_device_health()}
            assert set(raised) == {"silent_camera", "spool_backlog"}
            expected_on = {f"{topic}/gate-1/silent_camera", f"{topic}/gate-1/spool_backlog",
                           f"{topic}/gate-2/spool_backlog"}  # fmt: skip
            wait_for(
                lambda: {t for t in sensors if capture.latest().get(t) == b"ON"} == expected_on,
                "the silent camera's and the backlog's sensors ON",
            )
            assert capture.latest()[f"{topic}/gate-2/silent_camera"] == b"OFF"
            silent = json.loads(capture.latest()[f"{topic}/gate-1/silent_camera/attributes"])
            assert silent["alert_id"] == raised["silent_camera"].id
            assert silent["cause"] == "no_frame" and silent["reason"] == "camera silent: no frame"
            backlog = json.loads(capture.latest()[f"{topic}/gate-2/spool_backlog/attributes"])
            assert backlog["alert_id"] == raised["spool_backlog"].id
            # Retained: Home Assistant restarting now still finds the camera silent.
            late = Capture(f"{topic}/gate-1/silent_camera")
            try:
                wait_for(lambda: [(m.payload, m.retain) for m in late.all()] == [(b"ON", True)],
                         "the retained ON")  # fmt: skip
            finally:
                late.close()

            # Frames again and an empty spool: both clear, and the sensors say OFF.
            _report(dep, cameras=["gate-1", "gate-2"], frame_age=0, spool=0)
            cleared = services.check_device_health()
            assert sorted(a.clears or 0 for a in cleared) == sorted(a.id for a in raised.values())
            wait_for(lambda: all(capture.latest().get(t) == b"OFF" for t in sensors), "OFF again")
            assert json.loads(capture.latest()[f"{topic}/gate-1/silent_camera/attributes"]) == {}
            # A check that finds nothing new publishes nothing new.
            before = len(capture.all())
            assert services.check_device_health() == []
            threading.Event().wait(0.5)
            assert [m.topic for m in capture.all()[before:]] == []


def test_delivery_survives_an_unreachable_broker(
    home: Path, prefixes: Prefixes, capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = plates(2)
    events = f"{prefixes.topic}/camera/gate-1/event"
    monkeypatch.setenv("PRIVPLATE_MQTT__PORT", str(free_port()))  # nothing listens there
    with Deployment.open(home) as dep, Services(dep) as services:
        hotlist_of(services, wanted)
        services.webhooks.start()
        _, alerts = services.ingest([factories.read(dep, p) for p in wanted], actor="edge-1")
        assert len(alerts) == 2
        wait_for(
            lambda: all(r.attempts >= 2 for r in mqtt_rows(dep)) and len(mqtt_rows(dep)) == 2,
            "failed attempts against the closed port",
        )
        assert {(r.status, r.last_result) for r in mqtt_rows(dep)} == {("pending", "not-connected")}
    assert capture.on(events) == []
    # Restarted with the right port: the pending rows go out, each once.
    monkeypatch.setenv("PRIVPLATE_MQTT__PORT", str(BROKER[1]))
    with Deployment.open(home) as dep, Services(dep) as services:
        services.webhooks.start()
        wait_for(lambda: all(r.status == "delivered" for r in mqtt_rows(dep)), "delivered")
        wait_for(lambda: len(capture.on(events)) >= 2, "both events")
        threading.Event().wait(0.5)  # a duplicate would arrive within this
        got = sorted(json.loads(m.payload)["alert_id"] for m in capture.on(events))
        assert got == sorted(a.id for a in alerts)
        assert all(r.attempts >= 3 and r.last_result == "puback" for r in mqtt_rows(dep))
    assert_no_plates(capture, wanted)


# -- the endpoint, the settings, the migration --------------------------------------------------


def test_the_mqtt_endpoint_follows_the_settings(
    home: Path, prefixes: Prefixes, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = plates(1)
    monkeypatch.setenv("PRIVPLATE_MQTT__PORT", str(free_port()))
    with Deployment.open(home) as dep, Services(dep) as services:
        hotlist_of(services, wanted)
        created, _ = services.webhooks.create(actor="admin", url="http://127.0.0.1:9/x")
        # The webhook API lists and deactivates HTTP receivers only.
        assert [w.id for w in services.webhooks.all()] == [created.id]
        with pytest.raises(NotFound):
            services.webhooks.deactivate(actor="admin", webhook_id=MQTT_ENDPOINT_ID)
        services.ingest([factories.read(dep, wanted[0])], actor="edge-1")  # not started
        assert [r.status for r in mqtt_rows(dep)] == ["pending"]
    monkeypatch.setenv("PRIVPLATE_MQTT__ENABLED", "false")
    with Deployment.open(home) as dep, Services(dep):
        assert [(r.status, r.last_result) for r in mqtt_rows(dep)] == [("failed", "deactivated")]
        with dep.db.read() as conn:
            endpoint = conn.execute(select(Webhook).where(Webhook.id == MQTT_ENDPOINT_ID)).one()
        assert endpoint.kind == "mqtt" and not endpoint.active
        assert (
            endpoint.url
            == f"mqtt://127.0.0.1:{os.environ['PRIVPLATE_MQTT__PORT']}/{prefixes.topic}"
        )
        actions = [e.action for e in dep.audit.entries() if e.action.startswith("mqtt.")]
        assert actions == ["mqtt.enabled", "mqtt.disabled"]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"TOPIC_PREFIX": "a/+/b"}, "without wildcards"),
        ({"TOPIC_PREFIX": "a//b"}, "without wildcards"),
        ({"DISCOVERY_PREFIX": "#"}, "without wildcards"),
        ({"USERNAME": "ha", "PASSWORD": "pw", "HOST": "10.0.0.5"}, "mqtt.tls.enabled = true"),
        ({"PASSWORD": "pw"}, "needs mqtt.username"),
        ({"USERNAME": "ha", "PASSWORD": "pw", "PASSWORD_FILE": "pw.txt"}, "not both"),
        ({"TLS__KEY_FILE": "k.pem"}, "needs mqtt.tls.cert_file"),
        ({"QOS": "3"}, "mqtt.qos"),
        ({"TOPIC_PREFIX": "homeassistant"}, "must differ"),
    ],
)
def test_bad_mqtt_settings_are_refused_with_what_to_do(
    home: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(f"PRIVPLATE_MQTT__{name}", value)
    with pytest.raises(ConfigError, match=re.escape(says)) as refused:
        load_settings(home)
    assert "pw" not in str(refused.value).replace("password", "")


def test_a_password_over_plain_tcp_is_allowed_on_this_host_or_when_asked(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"USERNAME": "ha", "PASSWORD": "pw", "HOST": "127.0.0.1"}.items():
        monkeypatch.setenv(f"PRIVPLATE_MQTT__{name}", value)
    assert load_settings(home).mqtt.username == "ha"
    monkeypatch.setenv("PRIVPLATE_MQTT__HOST", "10.0.0.5")
    monkeypatch.setenv("PRIVPLATE_MQTT__ALLOW_PLAINTEXT_PASSWORD", "true")
    assert load_settings(home).mqtt.host == "10.0.0.5"


def test_migration_0018_adds_the_endpoint_kind(home: Path) -> None:
    with Deployment.open(home) as dep:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with dep.db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0017_enrolment_codes")
            assert "kind" not in {c["name"] for c in inspect(conn).get_columns("webhooks")}
            command.upgrade(cfg, "head")
            conn.commit()
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    assert [d for d in diffs if "webhooks" in repr(d)] == []
