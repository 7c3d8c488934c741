"""The MQTT tests' shared pieces: the shared broker, whether something listens on a port, and
the outbox rows of the MQTT endpoint."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from sqlalchemy import select

from privplate.alerts.webhooks import MQTT_ENDPOINT_ID
from privplate.deployment import Deployment
from privplate.store.outbox_models import WebhookDelivery

#: The Mosquitto these machines run (and CI).
BROKER = ("127.0.0.1", 1883)


def listening(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def skip_without_broker() -> None:
    """Skip the calling test module where no broker listens, except under CI (where a missing
    broker is a failure, not a skip)."""
    if os.environ.get("CI") != "true" and not listening(*BROKER):
        pytest.skip(f"no MQTT broker on {BROKER[0]}:{BROKER[1]}", allow_module_level=True)


def mqtt_rows(dep: Deployment) -> list[Any]:
    """The outbox rows of the MQTT endpoint, one per alert."""
    with dep.db.read() as conn:
        return list(
            conn.execute(
                select(WebhookDelivery).where(WebhookDelivery.webhook_id == MQTT_ENDPOINT_ID)
            ).all()
        )
