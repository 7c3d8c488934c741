"""Home Assistant's MQTT discovery schema, as data, and a check of one discovery config
against it (for the MQTT tests)."""

from __future__ import annotations

import re
from typing import Any

# -- Home Assistant's MQTT discovery schema (home-assistant.io/integrations/mqtt, and the
# sensor.mqtt, binary_sensor.mqtt and event.mqtt pages), as data -----------------------------

#: <discovery_prefix>/<component>/[<node_id>/]<object_id>/config; ids are [a-zA-Z0-9_-].
ID = r"[a-zA-Z0-9_-]+"
COMPONENTS = {"sensor", "binary_sensor", "event"}
SENSOR_DEVICE_CLASSES = {
    "absolute_humidity", "apparent_power", "aqi", "area", "atmospheric_pressure", "battery",
    "blood_glucose_concentration", "carbon_dioxide", "carbon_monoxide", "conductivity",
    "current", "data_rate", "data_size", "date", "distance", "duration", "energy",
    "energy_distance", "energy_storage", "enum", "frequency", "gas", "humidity", "illuminance",
    "irradiance", "moisture", "monetary", "nitrogen_dioxide", "nitrogen_monoxide",
    "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power", "power_factor",
    "precipitation", "precipitation_intensity", "pressure", "reactive_energy",
    "reactive_power", "signal_strength", "sound_pressure", "speed", "sulphur_dioxide",
    "temperature", "timestamp", "volatile_organic_compounds",
    "volatile_organic_compounds_parts", "voltage", "volume", "volume_flow_rate",
    "volume_storage", "water", "weight", "wind_direction", "wind_speed",
}  # fmt: skip
BINARY_SENSOR_DEVICE_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
}  # fmt: skip
EVENT_DEVICE_CLASSES = {"button", "doorbell", "motion"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
ENTITY_CATEGORIES = {"config", "diagnostic"}
COMMON_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "device", "enabled_by_default", "encoding", "entity_category", "entity_picture",
    "expire_after", "force_update", "icon", "json_attributes_template",
    "json_attributes_topic", "name", "object_id", "default_entity_id", "origin",
    "payload_available", "payload_not_available", "platform", "qos", "unique_id",
    "value_template", "state_topic", "device_class",
}  # fmt: skip
SCHEMA: dict[str, dict[str, Any]] = {
    "sensor": {
        "required": {"state_topic", "unique_id", "name", "device"},
        "allowed": COMMON_KEYS
        | {
            "last_reset_value_template",
            "options",
            "state_class",
            "suggested_display_precision",
            "unit_of_measurement",
        },
        "device_classes": SENSOR_DEVICE_CLASSES,
    },
    "binary_sensor": {
        "required": {"state_topic", "unique_id", "name", "device"},
        "allowed": COMMON_KEYS | {"off_delay", "payload_off", "payload_on"},
        "device_classes": BINARY_SENSOR_DEVICE_CLASSES,
    },
    "event": {
        "required": {"state_topic", "unique_id", "name", "device", "event_types"},
        "allowed": (COMMON_KEYS - {"expire_after", "force_update"}) | {"event_types"},
        "device_classes": EVENT_DEVICE_CLASSES,
    },
}
DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
ORIGIN_KEYS = {"name", "sw_version", "support_url"}


def check_discovery(topic: str, config: dict[str, Any], *, discovery: str, prefix: str) -> str:
    """Check one config against the schema; returns its component."""
    match = re.fullmatch(rf"{re.escape(discovery)}/(\w+)/({ID})/({ID})/config", topic)
    assert match, topic
    component = match.group(1)
    assert component in COMPONENTS, topic
    schema = SCHEMA[component]
    assert schema["required"] <= config.keys(), (topic, schema["required"] - config.keys())
    assert config.keys() <= schema["allowed"], (topic, config.keys() - schema["allowed"])
    if "device_class" in config:
        assert config["device_class"] in schema["device_classes"], topic
    if "state_class" in config:
        assert config["state_class"] in STATE_CLASSES, topic
    if "entity_category" in config:
        assert config["entity_category"] in ENTITY_CATEGORIES, topic
    assert isinstance(config["unique_id"], str) and config["unique_id"], topic
    assert isinstance(config["name"], str) and config["name"], topic
    device = config["device"]
    assert device.keys() <= DEVICE_KEYS, device.keys() - DEVICE_KEYS
    assert isinstance(device["identifiers"], list) and device["identifiers"], topic
    assert all(isinstance(i, str) and i for i in device["identifiers"])
    assert {"name", "manufacturer", "model", "sw_version"} <= device.keys()
    assert config.get("origin", {}).keys() <= ORIGIN_KEYS
    assert "name" in config.get("origin", {"name": "-"})
    for entry in config["availability"]:
        assert entry.keys() <= {"topic", "payload_available", "payload_not_available",
                                "value_template"}  # fmt: skip
        assert entry["topic"] == f"{prefix}/status"
    assert config["availability_mode"] in {"all", "any", "latest"}
    assert config["qos"] in (0, 1, 2)
    # Topics privplate publishes are its own, without wildcards.
    for key in ("state_topic", "json_attributes_topic"):
        if key in config:
            assert config[key].startswith(f"{prefix}/camera/"), (topic, key)
            assert not set(config[key]) & {"+", "#"}
    if component == "event":
        assert isinstance(config["event_types"], list) and config["event_types"]
        assert all(isinstance(t, str) for t in config["event_types"])
    if component == "binary_sensor" and "off_delay" in config:
        assert isinstance(config["off_delay"], int) and config["off_delay"] > 0
    if config.get("device_class") == "timestamp":
        assert "unit_of_measurement" not in config
    return component
