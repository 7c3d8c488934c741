"""privplate's MQTT topics and Home Assistant discovery configs: pure functions of the
settings and the camera registry, no broker and no paho.

Topics, under ``mqtt.topic_prefix`` (P)::

    P/status                                online / offline (retained; the will)
    P/camera/<camera>/reads_per_minute      a number (retained)
    P/camera/<camera>/last_contact          an ISO 8601 time (retained)
    P/camera/<camera>/alert                 ON / OFF (retained)
    P/camera/<camera>/alert/attributes      the last alert, JSON (retained)
    P/camera/<camera>/event                 each alert, JSON with "event_type" (never retained)
    P/camera/<camera>/health_event          each device alert (silent camera, spool backlog,
                                            and their clearing), JSON (never retained)
    P/camera/<camera>/silent_camera         ON while a silent-camera alert is open, else OFF
    P/camera/<camera>/spool_backlog         ON while its device's spool-backlog alert is open
    P/camera/<camera>/<kind>/attributes     the open one's alert id, cause, reason and since
                                            (both retained; {} once it cleared)
    P/camera/<camera>/<key>                 further per-camera state (publish_camera_state)

and one discovery config per entity at
``<discovery_prefix>/<component>/<node_id>/<object_id>/config``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from privplate.alerts.device_alerts import Episode
from privplate.alerts.kinds import describe
from privplate.alerts.records import AlertInfo
from privplate.errors import InvalidRequest
from privplate.settings import MqttSettings
from privplate.store.cameras import CameraInfo
from privplate.store.server_models import AlertKind

#: A per-camera state value: published as its text (a time as ISO 8601, a bool as ON/OFF);
#: None clears the retained value.
StateValue = str | int | float | bool | datetime | None
Component = Literal["sensor", "binary_sensor", "event"]

#: The event entity's one event type.
ALERT_EVENT = "hotlist_alert"
#: Keys of ``publish_camera_state``: a topic level of its own, not one privplate uses.
STATE_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: The device alerts with a binary sensor of their own, per camera (their topic level).
PROBLEMS = (AlertKind.SILENT_CAMERA, AlertKind.SPOOL_BACKLOG)
RESERVED_KEYS = frozenset({"alert", "event", "health_event", *PROBLEMS})
_PROBLEM_NAMES = {
    AlertKind.SILENT_CAMERA: "Camera silent",
    AlertKind.SPOOL_BACKLOG: "Spool backlog",
}
#: Home Assistant's node and object ids: [a-zA-Z0-9_-] only.
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def _slug(text: str) -> str:
    """``text`` as a discovery id; a text that had to change gets a short hash of the
    original, so two camera ids never share one (gate.1 and gate_1)."""
    safe = _UNSAFE.sub("_", text)
    if safe == text:
        return safe
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def state_text(value: StateValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidRequest("a camera state time must carry its time zone")
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@dataclass(frozen=True)
class Entity:
    component: Component
    object_id: str
    config: dict[str, Any]


@dataclass(frozen=True)
class Topics:
    prefix: str
    discovery_prefix: str

    @classmethod
    def of(cls, settings: MqttSettings) -> Topics:
        return cls(settings.topic_prefix, settings.discovery_prefix)

    @property
    def availability(self) -> str:
        return f"{self.prefix}/status"

    def camera(self, camera_id: str, key: str) -> str:
        return f"{self.prefix}/camera/{camera_id}/{key}"

    def alert(self, camera_id: str) -> str:
        return self.camera(camera_id, "alert")

    def alert_attributes(self, camera_id: str) -> str:
        return self.camera(camera_id, "alert/attributes")

    def event(self, camera_id: str) -> str:
        return self.camera(camera_id, "event")

    def health_event(self, camera_id: str) -> str:
        """Device alerts about the camera (or its device): privplate.alerts.device_alerts."""
        return self.camera(camera_id, "health_event")

    def problem(self, camera_id: str, kind: AlertKind) -> str:
        """ON / OFF: a device alert of ``kind`` is open for the camera."""
        return self.camera(camera_id, kind.value)

    def problem_attributes(self, camera_id: str, kind: AlertKind) -> str:
        return self.camera(camera_id, f"{kind.value}/attributes")

    def state(self, camera_id: str, key: str) -> str:
        """The topic of one state value (reads_per_minute, last_contact, a health key)."""
        if not STATE_KEY.fullmatch(key) or key in RESERVED_KEYS:
            raise InvalidRequest(
                "a camera state key is 1-64 characters of a-z, 0-9 and '_', starting with a "
                "letter, and not 'alert' or 'event'"
            )
        return self.camera(camera_id, key)

    def node_id(self, camera_id: str) -> str:
        """The camera's node in discovery topics; the prefix keeps two deployments on one
        broker apart."""
        return _slug(f"{self.prefix.replace('/', '_')}_{camera_id}")

    def config(self, component: Component, camera_id: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node_id(camera_id)}/{object_id}/config"

    def camera_topics(self, camera_id: str) -> list[str]:
        """The retained state topics privplate itself publishes for a camera."""
        return [
            self.state(camera_id, "reads_per_minute"),
            self.state(camera_id, "last_contact"),
            self.alert(camera_id),
            self.alert_attributes(camera_id),
            *(t for k in PROBLEMS for t in (self.problem(camera_id, k),
                                             self.problem_attributes(camera_id, k))),
        ]  # fmt: skip


def entities(
    camera: CameraInfo, topics: Topics, settings: MqttSettings, sw_version: str
) -> list[Entity]:
    """The camera's Home Assistant entities (discovery configs, one per entity)."""
    node = topics.node_id(camera.id)
    device = {
        "identifiers": [node],
        "name": f"privplate camera {camera.name or camera.id}",
        "manufacturer": "privplate",
        "model": "licence plate camera",
        "sw_version": sw_version,
    }
    common: dict[str, Any] = {
        "device": device,
        "origin": {"name": "privplate", "sw_version": sw_version},
        "availability": [{"topic": topics.availability}],
        "availability_mode": "latest",
        "qos": settings.qos,
    }
    return [
        Entity(
            "sensor",
            "reads_per_minute",
            {
                **common,
                "unique_id": f"{node}_reads_per_minute",
                "name": "Reads per minute",
                "state_topic": topics.state(camera.id, "reads_per_minute"),
                "unit_of_measurement": "reads/min",
                "state_class": "measurement",
                "icon": "mdi:car-multiple",
            },
        ),
        Entity(
            "sensor",
            "last_contact",
            {
                **common,
                "unique_id": f"{node}_last_contact",
                "name": "Last contact",
                "state_topic": topics.state(camera.id, "last_contact"),
                "device_class": "timestamp",
                "entity_category": "diagnostic",
            },
        ),
        Entity(
            "binary_sensor",
            "hotlist_alert",
            {
                **common,
                "unique_id": f"{node}_hotlist_alert",
                "name": "Hotlist alert",
                "state_topic": topics.alert(camera.id),
                "payload_on": "ON",
                "payload_off": "OFF",
                "off_delay": settings.alert_on_seconds,
                "device_class": "problem",
                "json_attributes_topic": topics.alert_attributes(camera.id),
            },
        ),
        Entity(
            "event",
            "hotlist_alert_event",
            {
                **common,
                "unique_id": f"{node}_hotlist_alert_event",
                "name": "Hotlist alert event",
                "state_topic": topics.event(camera.id),
                "event_types": [ALERT_EVENT],
                "icon": "mdi:car-emergency",
            },
        ),
        *(
            Entity(
                "binary_sensor",
                kind.value,
                {
                    **common,
                    "unique_id": f"{node}_{kind.value}",
                    "name": name,
                    "state_topic": topics.problem(camera.id, kind),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    # No off_delay: the server says OFF when the alert clears.
                    "device_class": "problem",
                    "json_attributes_topic": topics.problem_attributes(camera.id, kind),
                },
            )
            for kind, name in _PROBLEM_NAMES.items()
        ),
    ]


def discovery_messages(
    camera: CameraInfo, topics: Topics, settings: MqttSettings, sw_version: str
) -> dict[str, bytes]:
    """Config topic -> JSON payload for each entity of ``camera``."""
    return {
        topics.config(e.component, camera.id, e.object_id): json.dumps(
            e.config, sort_keys=True
        ).encode()
        for e in entities(camera, topics, settings, sw_version)
    }


def removal_topics(camera_id: str, topics: Topics) -> list[str]:
    """The config topics to clear (an empty retained payload) when a camera goes."""
    objects: list[tuple[Component, str]] = [
        ("sensor", "reads_per_minute"),
        ("sensor", "last_contact"),
        ("binary_sensor", "hotlist_alert"),
        ("event", "hotlist_alert_event"),
        *(("binary_sensor", kind.value) for kind in PROBLEMS),
    ]
    return [topics.config(component, camera_id, obj) for component, obj in objects]


def alert_fields(alert: AlertInfo) -> dict[str, Any]:
    """What MQTT carries of an alert: the record's hotlist entry, camera and times. The
    alert record holds no plate or token; its read and evidence ids are left out too."""
    return {
        "alert_id": alert.id,
        "camera_id": alert.camera_id,
        "hotlist": alert.hotlist,
        "entry_id": str(alert.entry_id),
        "reason": alert.reason,
        "case_number": alert.case_number,
        "via_alternate": alert.via_alternate,
        "confidence": round(alert.confidence, 4),
        "observed_at": alert.observed_at.isoformat(),
        "created_at": alert.created_at.isoformat(),
    }


def problem_fields(episode: Episode | None) -> dict[str, Any]:
    """A device-alert sensor's attributes: the open alert's id, cause, reason and since when
    (nothing once it cleared). Counts and causes only, like the alert itself."""
    if episode is None:
        return {}
    return {
        "alert_id": episode.alert_id,
        "cause": episode.cause.value,
        "reason": describe(episode.kind, episode.cause, clearing=False),
        "since": episode.opened_at.isoformat(),
    }


def alert_event(alert: AlertInfo, delivery: str) -> bytes:
    """The event entity's message: ``event_type`` plus the alert's fields (attributes in
    Home Assistant) and the outbox delivery id, the same on every retry, for deduplication."""
    body: Mapping[str, Any] = {
        "event_type": ALERT_EVENT,
        "delivery": delivery,
        **alert_fields(alert),
    }
    return json.dumps(body, sort_keys=True).encode()


def device_event(alert: AlertInfo, delivery: str) -> bytes:
    """A device alert's message on the camera's ``health_event`` topic: ``event_type`` is
    the alert's kind (``silent_camera``, ``spool_backlog``), with ``_cleared`` on the row
    that ends one; counts and causes only, no hotlist fields."""
    suffix = "_cleared" if alert.clears is not None else ""
    body = {
        "event_type": f"{alert.kind}{suffix}",
        "delivery": delivery,
        "alert_id": alert.id,
        "camera_id": alert.camera_id,
        "device_id": alert.device_id,
        "cause": alert.cause,
        "reason": alert.reason,
        "clears": alert.clears,
        "observed_at": alert.observed_at.isoformat(),
        "created_at": alert.created_at.isoformat(),
    }
    return json.dumps(body, sort_keys=True).encode()
