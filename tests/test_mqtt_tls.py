"""MQTT over TLS with a username and password, against a real Mosquitto of the test's own.

The shared broker on 127.0.0.1:1883 is plain and anonymous, as a home network's often is; a
city's or a careful HOA's broker is not. Each test here starts a private ``mosquitto`` on a
free port with a TLS listener (a CA and a server certificate made with ``openssl`` for the
test) that refuses anonymous clients, and checks what privplate's publisher does: with the
right CA and password an alert arrives, delivered once; with a wrong password or a broker
certificate from another CA nothing is published, the outbox row stays pending (retried,
not lost) and the log says why without the password or a plate.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import shutil
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from privplate.deployment import Deployment
from privplate.services import Services
from privplate.store.outbox_models import WebhookDelivery
from tests import factories
from tests.cluster_support import free_port
from tests.mqtt_support import listening, mqtt_rows
from tests.privacy import hits_in_bytes
from tests.webhook_support import hotlist_of, plates, wait_for

paho = pytest.importorskip("paho.mqtt.client")

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
TOOLS = [MOSQUITTO, shutil.which("mosquitto_passwd"), shutil.which("openssl")]
if not all(t and os.access(t, os.X_OK) for t in TOOLS):
    if os.environ.get("CI") == "true":
        raise RuntimeError(
            "CI needs mosquitto, mosquitto_passwd and openssl for the MQTT TLS tests"
        )
    pytest.skip("mosquitto, mosquitto_passwd or openssl is not installed", allow_module_level=True)

USER = "privplate-gate"
PASSWORD = "correct horse battery staple 7"


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN={name}", "-keyout", key, "-out", cert, cwd=folder)  # fmt: skip
    return cert, key


def make_server_cert(folder: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by ``ca``: (certificate, key)."""
    cert, key, csr = folder / "broker.crt", folder / "broker.key", folder / "broker.csr"
    ext = folder / "broker.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n", encoding="utf-8")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", key, "-out", csr, cwd=folder)  # fmt: skip
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-days", "2", "-extfile", ext, "-out", cert, cwd=folder)  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class Broker:
    port: int
    ca_file: Path
    #: A CA that did not sign the broker's certificate.
    other_ca_file: Path


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    folder = tmp_path / "broker"
    ca = make_ca(folder, "test-ca")
    other = make_ca(folder, "other-ca")
    cert, key = make_server_cert(folder, ca)
    passwords = folder / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), USER, PASSWORD],
                   check=True, capture_output=True)  # fmt: skip
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        "\n".join(
            [
                "persistence false",
                # Run as whoever runs the test: as root, mosquitto would switch to its own
                # user, which cannot enter pytest's private temporary folders.
                f"user {getpass.getuser()}",
                "log_dest stderr",
                f"listener {port} 127.0.0.1",
                f"cafile {ca[0]}",
                f"certfile {cert}",
                f"keyfile {key}",
                "allow_anonymous false",
                f"password_file {passwords}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for(
            lambda: listening("127.0.0.1", port, 0.5) or process.poll() is not None,
            "mosquitto listening",
        )
        if process.poll() is not None:
            assert process.stderr is not None
            raise RuntimeError(f"mosquitto did not start: {process.stderr.read().decode()[-500:]}")
        yield Broker(port, ca[0], other[0])
    finally:
        process.terminate()
        process.wait(10)


class TlsCapture:
    """A subscriber with the right CA and password: what Home Assistant would see."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.payloads: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(
            callback_api_version=paho.CallbackAPIVersion.VERSION2,
            client_id=f"test-{uuid.uuid4().hex[:8]}",
        )
        self.client.username_pw_set(USER, PASSWORD)
        self.client.tls_set(ca_certs=str(broker.ca_file), cert_reqs=ssl.CERT_REQUIRED)

        def on_connect(client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            assert not reason.is_failure, reason
            client.subscribe(topic, qos=1)

        def on_message(_client: Any, _userdata: Any, msg: Any) -> None:
            with self._lock:
                self.payloads.append((msg.topic, bytes(msg.payload)))

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert subscribed.wait(10), "the test subscriber could not subscribe over TLS"

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.payloads if t == topic]

    def everything(self) -> bytes:
        with self._lock:
            return b"\n".join(t.encode() + b"\0" + p for t, p in self.payloads)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def configure(
    monkeypatch: pytest.MonkeyPatch, home: Path, broker: Broker, *, password: str, ca: Path
) -> str:
    """Environment for privplate's publisher; returns its topic prefix."""
    prefix = f"pptls-{uuid.uuid4().hex[:8]}"
    secret = home / "mqtt-password"
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    for name, value in {
        "ENABLED": "true",
        "HOST": "127.0.0.1",
        "PORT": str(broker.port),
        "USERNAME": USER,
        "PASSWORD_FILE": str(secret),
        "TLS__ENABLED": "true",
        "TLS__CA_FILE": str(ca),
        "TOPIC_PREFIX": prefix,
        "DISCOVERY_PREFIX": f"hatls-{prefix[6:]}",
        "STATE_INTERVAL_SECONDS": "0.2",
    }.items():
        monkeypatch.setenv(f"PRIVPLATE_MQTT__{name}", value)
    monkeypatch.setenv("PRIVPLATE_WEBHOOKS__FIRST_RETRY_SECONDS", "0.1")
    return prefix


def test_an_alert_reaches_a_tls_broker_that_requires_a_password(
    home: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = plates(1)
    prefix = configure(monkeypatch, home, broker, password=PASSWORD, ca=broker.ca_file)
    capture = TlsCapture(broker, f"{prefix}/#")
    events = f"{prefix}/camera/gate-1/event"
    try:
        with Deployment.open(home) as dep, Services(dep) as services:
            hotlist_of(services, wanted)
            services.webhooks.start()
            _, alerts = services.ingest([factories.read(dep, wanted[0])], actor="edge-1")
            assert len(alerts) == 1
            wait_for(lambda: len(capture.on(events)) == 1, "the alert event over TLS")
            wait_for(lambda: [r.status for r in mqtt_rows(dep)] == ["delivered"], "delivered")
            assert json.loads(capture.on(events)[0])["alert_id"] == alerts[0].id
            assert capture.on(f"{prefix}/status")[-1] == b"online"
            with dep.db.read() as conn:
                endpoint_rows = conn.execute(select(WebhookDelivery)).all()
            assert len(endpoint_rows) == 1
        assert hits_in_bytes(capture.everything(), wanted) == []
    finally:
        capture.close()


@pytest.mark.parametrize("fault", ["wrong password", "broker certificate from another CA"])
def test_a_refused_connection_publishes_nothing_and_loses_no_alert(
    home: Path,
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    wanted = plates(1)
    password = "not the password" if fault == "wrong password" else PASSWORD
    ca = broker.ca_file if fault == "wrong password" else broker.other_ca_file
    prefix = configure(monkeypatch, home, broker, password=password, ca=ca)
    capture = TlsCapture(broker, f"{prefix}/#")
    caplog.set_level(logging.INFO)
    try:
        with Deployment.open(home) as dep, Services(dep) as services:
            hotlist_of(services, wanted)
            services.webhooks.start()
            _, alerts = services.ingest([factories.read(dep, wanted[0])], actor="edge-1")
            assert len(alerts) == 1
            wait_for(
                lambda: (
                    [(r.status, r.attempts >= 2) for r in mqtt_rows(dep)] == [("pending", True)]
                ),
                "attempts refused and retried",
            )
            assert [r.last_result for r in mqtt_rows(dep)] == ["not-connected"]
        assert capture.on(f"{prefix}/camera/gate-1/event") == []
        assert capture.on(f"{prefix}/status") == []
        logged = "\n".join(r.getMessage() for r in caplog.records)
        said = [r.getMessage() for r in caplog.records if "cannot connect" in r.getMessage()]
        if fault == "wrong password":
            assert said and "the broker refused the connection: Not authorized" in said[0]
        else:
            assert said and "certificate verify failed" in said[0]
        assert len(said) == 1, "one warning per reason, not one per retry"
        assert PASSWORD not in logged and password not in logged
        assert hits_in_bytes(logged.encode(), wanted) == []
    finally:
        capture.close()
