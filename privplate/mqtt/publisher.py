"""The MQTT publisher: one broker connection per process, kept up by paho-mqtt's network
thread (reconnecting with backoff), and one state thread of its own.

- **Alerts** come from the webhook outbox's delivery loop (:meth:`MqttPublisher.send`, the
  MQTT endpoint's sink): the event, the binary sensor's ON and its attributes, each waited
  for (PUBACK at QoS 1) before the row is marked delivered; a broker that is down fails the
  attempt, and the outbox retries it with backoff, from this process or another.
- **Discovery**: on every (re)connect, and when Home Assistant announces itself on
  ``<discovery_prefix>/status``, the retained configs of every active camera are published
  and those of deactivated cameras cleared (an empty retained payload). Between connects the
  state thread compares the registry with what it published, every
  ``state_interval_seconds`` and at once when this process adds or deactivates a camera
  (:meth:`cameras_changed`), so another process's change arrives within one interval.
- **State**, every ``state_interval_seconds``: reads per minute (from the per-camera daily
  read counts, between two samples), last contact (the newest of the camera's devices'
  last requests and its newest stored read, as the operator's dashboard shows them:
  privplate.activity) and the alert sensor's OFF once ``alert_on_seconds`` have passed
  since the camera's last alert.
- **Device alerts** (a silent camera, a spool backlog): each is an event on the camera's
  ``health_event`` topic (from the outbox, as alerts are), and a binary sensor per camera and
  kind that is ON while the alert's episode is open, OFF once it cleared: published at each
  state interval and at once after a device alert's delivery.
- **Availability**: ``<topic_prefix>/status`` is "online" while connected and "offline" as
  the connection's will. With several processes each re-asserts "online" every interval, so
  one process's will does not leave the deployment "offline" for longer than that.

Other per-camera state (device health) goes through :meth:`publish_camera_state`.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from privplate import __version__, activity
from privplate.alerts.device_alerts import Episode, camera_problems
from privplate.alerts.records import AlertInfo
from privplate.errors import ConfigError, StoreError
from privplate.mqtt.topics import (
    PROBLEMS,
    StateValue,
    Topics,
    alert_event,
    alert_fields,
    device_event,
    discovery_messages,
    problem_fields,
    removal_topics,
    state_text,
)
from privplate.settings import MqttSettings
from privplate.store.cameras import CameraInfo, list_cameras
from privplate.store.database import Database
from privplate.store.server_models import Alert, AlertKind
from privplate.tokens.kek import check_private

if TYPE_CHECKING:
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
    from paho.mqtt.client import MQTTMessageInfo as MessageInfo
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger("privplate.mqtt")
_HINT = "install the mqtt extra: pip install 'privplate[mqtt]'"
#: How long a graceful stop waits for "offline" to reach the broker.
STOP_SECONDS = 2.0


def endpoint_url(settings: MqttSettings) -> str:
    """The MQTT endpoint as the outbox records it (no credentials)."""
    scheme = "mqtts" if settings.tls.enabled else "mqtt"
    return f"{scheme}://{settings.host}:{settings.port}/{settings.topic_prefix}"


def _paho() -> Any:
    try:
        from paho.mqtt import client  # noqa: PLC0415 - optional dependency, on first use
    except ModuleNotFoundError:
        raise ConfigError(f"mqtt.enabled is set but paho-mqtt is not installed; {_HINT}") from None
    return client


class MqttPublisher:
    """Publishes one deployment's alerts, Home Assistant discovery and camera state."""

    def __init__(
        self,
        *,
        db: Database,
        settings: MqttSettings,
        resolve: Callable[[Path], Path] = lambda p: p,
        sw_version: str = __version__,
    ) -> None:
        self.db = db
        self.settings = settings
        self.topics = Topics.of(settings)
        self._resolve = resolve
        self._sw_version = sw_version
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        #: Set at each (re)connect and Home Assistant birth: announce everything again.
        self._full_sync = threading.Event()
        #: Cameras whose discovery configs this connection published.
        self._published: set[str] = set()
        #: The alert sensor's state as this process last published it, by camera.
        self._alert_on: dict[str, bool] = {}
        #: The device-alert sensors as this process last published them: (camera, kind) ->
        #: the open episode's alert id, or None (OFF).
        self._problems: dict[tuple[str, AlertKind], int | None] = {}
        #: Set by a device alert's delivery: publish the device-alert sensors now.
        self._problems_due = threading.Event()
        #: The last sample of today's read counts: (day, counts by camera, monotonic time).
        self._sample: tuple[object, dict[str, int], float] | None = None
        #: Why the last connection attempt failed, until one succeeds (logged once per reason).
        self._failure: str | None = None

    # -- lifecycle (privplate.alerts.delivery.ManagedSink) ---------------------------------

    @property
    def running(self) -> bool:
        return self._client is not None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        with self._lock:
            if self._client is not None:
                return
            client = self._build_client()
            self._stopping.clear()
            client.connect_async(
                self.settings.host, self.settings.port, keepalive=self.settings.keepalive_seconds
            )
            client.loop_start()
            self._client = client
            self._thread = threading.Thread(target=self._run, name="mqtt-state", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            thread, self._thread = self._thread, None
        if client is None:
            return
        self._stopping.set()
        self._wake.set()
        if thread is not None:
            thread.join(STOP_SECONDS + self.settings.state_interval_seconds)
        if self._connected.is_set():
            info = client.publish(self.topics.availability, b"offline", self.settings.qos, True)
            self._wait([info], STOP_SECONDS)
        client.disconnect()
        client.loop_stop()
        self._connected.clear()

    def _build_client(self) -> Client:
        paho = _paho()
        s = self.settings
        client: Client = paho.Client(
            callback_api_version=paho.CallbackAPIVersion.VERSION2,
            # Random per process: two connections with one id disconnect each other.
            client_id=f"{s.client_id}-{secrets.token_hex(4)}",
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        client.will_set(self.topics.availability, b"offline", s.qos, retain=True)
        if s.username:
            client.username_pw_set(s.username, self._password() or None)
        if s.tls.enabled:
            paths = {
                name: self._existing(name, value)
                for name, value in (
                    ("ca_file", s.tls.ca_file),
                    ("cert_file", s.tls.cert_file),
                    ("key_file", s.tls.key_file),
                )
            }
            if paths["key_file"] is not None:
                check_private(Path(paths["key_file"]))
            client.tls_set(
                ca_certs=paths["ca_file"], certfile=paths["cert_file"], keyfile=paths["key_file"]
            )
            client.tls_insecure_set(s.tls.insecure)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _existing(self, name: str, value: Path | None) -> str | None:
        if value is None:
            return None
        path = self._resolve(value)
        if not path.is_file():
            raise ConfigError(f"mqtt.tls.{name} {path} does not exist")
        return str(path)

    def _password(self) -> str:
        s = self.settings
        if s.password_file is None:
            return s.password
        path = self._resolve(s.password_file)
        if not path.is_file():
            raise ConfigError(f"mqtt.password_file {path} does not exist")
        check_private(path)
        return path.read_text(encoding="utf-8").strip()

    # -- paho's callbacks (its network thread) ---------------------------------------------

    def _on_connect(
        self,
        client: Client,
        _userdata: object,
        _flags: ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._cannot_connect(f"the broker refused the connection: {reason.getName()}")
            return
        self._failure = None
        log.info("mqtt: connected to %s:%d", self.settings.host, self.settings.port)
        client.subscribe(f"{self.settings.discovery_prefix}/status", qos=1)
        self._connected.set()
        self._full_sync.set()
        self._wake.set()

    def _on_connect_fail(self, _client: Client, _userdata: object) -> None:
        # paho calls this inside its ``except OSError`` around the (re)connect and keeps the
        # exception to itself: exc_info is the only way to say why (a certificate from another
        # CA, a refused port, a name that does not resolve).
        exc = sys.exc_info()[1]
        self._cannot_connect(
            f"{type(exc).__name__}: {exc}" if exc is not None else "no reason given"
        )

    def _cannot_connect(self, why: str) -> None:
        """Warn once per reason: paho retries with backoff, and a log line per retry for an
        outage of hours would bury everything else."""
        if why != self._failure:
            self._failure = why
            log.warning(
                "mqtt: cannot connect to %s:%d (%s); retrying",
                self.settings.host,
                self.settings.port,
                why,
            )

    def _on_disconnect(
        self,
        _client: Client,
        _userdata: object,
        _flags: DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if self._connected.is_set():
            log.warning("mqtt: disconnected (%s); reconnecting", reason.getName())
        self._connected.clear()

    def _on_message(self, _client: Client, _userdata: object, message: MQTTMessage) -> None:
        # Home Assistant's birth message: it (re)started, so it wants the configs again.
        if message.payload == b"online":
            self._full_sync.set()
            self._wake.set()

    # -- publishing --------------------------------------------------------------------------

    def _publish(self, topic: str, payload: bytes, *, retain: bool) -> MessageInfo | None:
        client = self._client
        if client is None or not self._connected.is_set():
            return None
        return client.publish(topic, payload, self.settings.qos, retain)

    def _wait(self, infos: list[MessageInfo | None], timeout: float) -> str | None:
        """None once every message reached the broker (PUBACK at QoS 1), else why not."""
        deadline = time.monotonic() + timeout
        for info in infos:
            if info is None:
                return "not-connected"
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                return type(exc).__name__
            if not info.is_published():
                return "timeout"
        return None

    def send(self, delivery: uuid.UUID, alert: AlertInfo, timeout: float) -> tuple[bool, str]:
        """One attempt at an outbox delivery: the alert event, then the binary sensor's ON
        and attributes (retained), all acknowledged within ``timeout``."""
        if not self._connected.is_set():
            return False, "not-connected"
        camera = alert.camera_id
        if alert.kind != AlertKind.HOTLIST_HIT.value:
            # A silent camera or spool backlog: its own topic, never the hotlist sensor.
            sent = self._publish(
                self.topics.health_event(camera), device_event(alert, str(delivery)), retain=False
            )
            failed = self._wait([sent], timeout)
            if failed is not None:
                return False, failed
            # The sensors follow the open episodes (not this event: a retried delivery may
            # arrive after its alert cleared), published by the state thread, at once.
            self._problems_due.set()
            self._wake.set()
            return True, "puback" if self.settings.qos else "sent"
        event = alert_event(alert, str(delivery))
        infos = [
            self._publish(self.topics.event(camera), event, retain=False),
            self._publish(self.topics.alert(camera), b"ON", retain=self.settings.retain),
            self._publish(
                self.topics.alert_attributes(camera),
                json.dumps(alert_fields(alert), sort_keys=True).encode(),
                retain=self.settings.retain,
            ),
        ]
        failed = self._wait(infos, timeout)
        if failed is not None:
            return False, failed
        self._alert_on[camera] = True
        return True, "puback" if self.settings.qos else "sent"

    def publish_camera_state(self, camera_id: str, values: Mapping[str, StateValue]) -> bool:
        """Publish per-camera state, one retained topic per key
        (``<topic_prefix>/camera/<camera>/<key>``); None clears a key. False while the
        broker is not reachable (state is published again at the next interval, never
        queued). A key is 1-64 characters of a-z, 0-9 and '_' (InvalidRequest otherwise)."""
        messages = [(self.topics.state(camera_id, k), state_text(v)) for k, v in values.items()]
        infos = [
            self._publish(topic, text.encode(), retain=self.settings.retain or not text)
            for topic, text in messages
        ]
        return all(i is not None for i in infos)

    def cameras_changed(self) -> None:
        """A camera was added or deactivated (in this process): publish or clear its
        discovery now rather than at the next interval."""
        self._wake.set()

    # -- the state thread --------------------------------------------------------------------

    def _run(self) -> None:
        interval = self.settings.state_interval_seconds
        next_state = 0.0
        while not self._stopping.is_set():
            self._wake.wait(max(0.0, next_state - time.monotonic()))
            self._wake.clear()
            if self._stopping.is_set():
                return
            if not self._connected.is_set():
                next_state = time.monotonic() + interval
                continue
            try:
                full = self._full_sync.is_set()
                self._full_sync.clear()
                if full:
                    self._published.clear()
                    self._alert_on.clear()
                    self._problems.clear()
                cameras = list_cameras(db=self.db)
                self._reconcile(cameras, full=full)
                active = [c for c in cameras if c.active]
                if full or time.monotonic() >= next_state:
                    next_state = time.monotonic() + interval
                    self._publish(self.topics.availability, b"online", retain=True)
                    self._publish_state(active)
                elif self._problems_due.is_set():
                    self._problems_due.clear()
                    self._publish_problems(active)
            except (StoreError, SQLAlchemyError) as exc:
                log.error("mqtt: reading cameras or state failed (%s)", type(exc).__name__)
                next_state = time.monotonic() + interval

    def _reconcile(self, cameras: list[CameraInfo], *, full: bool) -> None:
        """Publish the configs of active cameras not yet announced on this connection; clear
        those of cameras that went (and, after a connect, of every inactive camera)."""
        active = {c.id: c for c in cameras if c.active}
        gone = {c for c in self._published if c not in active}
        if full:
            gone |= {c.id for c in cameras if not c.active}
        for camera_id in sorted(gone):
            for topic in [*removal_topics(camera_id, self.topics),
                          *self.topics.camera_topics(camera_id)]:  # fmt: skip
                self._publish(topic, b"", retain=True)
            self._published.discard(camera_id)
            self._alert_on.pop(camera_id, None)
            for kind in PROBLEMS:
                self._problems.pop((camera_id, kind), None)
        if not self.settings.discovery:
            return
        for camera_id, camera in sorted(active.items()):
            if camera_id in self._published:
                continue
            messages = discovery_messages(camera, self.topics, self.settings, self._sw_version)
            for topic, payload in messages.items():
                self._publish(topic, payload, retain=self.settings.retain)
            self._published.add(camera_id)

    def _publish_state(self, active: list[CameraInfo]) -> None:
        now = datetime.now(UTC)
        rows = {r.camera.id: r for r in activity.cameras(self.db, now)}
        contact: dict[str, datetime] = {}
        for device in activity.devices(self.db):
            if device.device.revoked or device.last_contact is None:
                continue
            for camera_id in device.device.cameras:
                seen = contact.get(camera_id)
                contact[camera_id] = max(seen, device.last_contact) if seen else device.last_contact
        since = now - timedelta(seconds=self.settings.alert_on_seconds)
        with self.db.read() as conn:
            recent = set(
                conn.execute(
                    select(Alert.camera_id)
                    .where(Alert.created_at >= since, Alert.kind == AlertKind.HOTLIST_HIT.value)
                    .group_by(Alert.camera_id)
                ).scalars()
            )
        rates = self._rates(now, {cid: r.reads_today for cid, r in rows.items()})
        for camera in active:
            values: dict[str, StateValue] = {}
            if camera.id in rates:
                values["reads_per_minute"] = round(rates[camera.id], 2)
            row = rows.get(camera.id)
            times = [t for t in (contact.get(camera.id), row.last_read if row else None) if t]
            if times:
                values["last_contact"] = max(times)
            if values:
                self.publish_camera_state(camera.id, values)
            on = camera.id in recent
            if self._alert_on.get(camera.id) == on:
                continue
            state = b"ON" if on else b"OFF"
            if self._publish(self.topics.alert(camera.id), state, retain=self.settings.retain):
                self._alert_on[camera.id] = on
        self._publish_problems(active)

    def _publish_problems(self, active: list[CameraInfo]) -> None:
        """The "camera silent" and "spool backlog" sensors (and attributes) of the cameras
        whose state changed since this process last published it: ON while the deployment
        has the alert's episode open (privplate.alerts.device_alerts.camera_problems)."""
        self._problems_due.clear()
        with self.db.read() as conn:
            problems = camera_problems(conn)
        for camera in active:
            for kind in PROBLEMS:
                episode: Episode | None = problems.get(camera.id, {}).get(kind)
                alert_id = None if episode is None else episode.alert_id
                key = (camera.id, kind)
                if key in self._problems and self._problems[key] == alert_id:
                    continue
                attributes = json.dumps(problem_fields(episode), sort_keys=True).encode()
                sent = [
                    self._publish(
                        self.topics.problem_attributes(camera.id, kind),
                        attributes,
                        retain=self.settings.retain,
                    ),
                    self._publish(
                        self.topics.problem(camera.id, kind),
                        b"OFF" if episode is None else b"ON",
                        retain=self.settings.retain,
                    ),
                ]
                if all(i is not None for i in sent):
                    self._problems[key] = alert_id

    def _rates(self, now: datetime, today: dict[str, int]) -> dict[str, float]:
        """Reads per minute since the last sample of today's counts; nothing on the first
        sample. After midnight the new day's count is all that arrived since."""
        day, mono = now.date(), time.monotonic()
        last, self._sample = self._sample, (day, today, mono)
        if last is None:
            return {}
        last_day, counts, last_mono = last
        minutes = (mono - last_mono) / 60
        if minutes <= 0:
            return {}
        before = counts if last_day == day else {}
        return {cid: max(0, n - before.get(cid, 0)) / minutes for cid, n in today.items()}
