"""Live alerts over a real server: a hotlisted plate reaches the SSE stream and a webhook
receiver (with a valid HMAC signature) before long; a plate that is not listed raises nothing.
Then the database files and every log line of the run are scanned for plate text."""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from privplate.alerts import verify_body
from privplate.api import create_app
from privplate.deployment import Deployment
from privplate.devices import DeviceKey, IngestBatch, registry
from privplate.identity import accounts
from privplate.identity.roles import Role
from tests import factories
from tests.privacy import dump_database, hits_in_bytes

HOTLISTED = "7WAN123"
UNLISTED = "4FREE99"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Receiver(BaseHTTPRequestHandler):
    deliveries: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.deliveries.put((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server(home: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log_file = tmp_path / "server.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    port = _free_port()
    config = uvicorn.Config(
        create_app(home, run_scheduler=False),
        host="127.0.0.1",
        port=port,
        log_level="debug",
        access_log=True,
        log_config=None,
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", log_file
    finally:
        srv.should_exit = True
        thread.join(10)
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


def _sse(url: str, key: str, events: queue.Queue[dict[str, Any]], ready: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with (
        httpx.Client(timeout=httpx.Timeout(30.0, read=30.0)) as client,
        client.stream("GET", f"{url}/alerts/stream", headers=headers) as answer,
    ):
        event: dict[str, str] = {}
        for line in answer.iter_lines():
            ready.set()
            if line.startswith("data: "):
                event["data"] = line[6:]
            elif line.startswith("id: "):
                event["id"] = line[4:]
            elif line == "" and "data" in event:
                events.put({"id": event["id"], **json.loads(event["data"])})
                if events.qsize() >= 1:
                    return
                event = {}


def _setup(home: Path) -> tuple[dict[Role, str], DeviceKey, Any, Any]:
    with Deployment.open(home, actor="test") as dep:
        dep.add_camera("gate-1")
        keys = {}
        for role in (Role.ADMIN, Role.OPERATOR, Role.INVESTIGATOR):
            accounts.create_user(
                db=dep.db, audit=dep.audit, actor="test", name=role.value, role=role, password=None
            )
            keys[role] = accounts.create_api_key(
                db=dep.db, audit=dep.audit, actor="test", name=role.value
            )[1]
        device = DeviceKey.generate("edge-1")
        registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor="test",
            device_id="edge-1",
            public_key=device.public_key,
            cameras=["gate-1"],
        )
        hotlisted = factories.read(dep, HOTLISTED, camera_id="gate-1")
        unlisted = factories.read(dep, UNLISTED, camera_id="gate-1")
    return keys, device, hotlisted, unlisted


def test_hotlisted_plate_reaches_sse_and_webhook_and_nothing_leaks(
    home: Path, server: tuple[str, Path]
) -> None:
    url, log_file = server
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"

    keys, device, hotlisted, unlisted = _setup(home)

    with httpx.Client(base_url=url, timeout=10) as client:

        def as_role(role: Role) -> dict[str, str]:
            return {"Authorization": f"Bearer {keys[role]}"}

        created = client.post("/webhooks", json={"url": hook_url}, headers=as_role(Role.ADMIN))
        assert created.status_code == 201, created.text
        secret = bytes.fromhex(created.json()["secret"])
        client.post(
            "/hotlists",
            json={"name": "stolen", "source": "stolen-vehicle"},
            headers=as_role(Role.OPERATOR),
        ).raise_for_status()
        client.post(
            "/hotlists/stolen/entries",
            json={"entries": [{"plate": HOTLISTED, "reason": "stolen", "case_number": "C-1"}]},
            headers=as_role(Role.OPERATOR),
        ).raise_for_status()

        events: queue.Queue[dict[str, Any]] = queue.Queue()
        ready = threading.Event()
        threading.Thread(
            target=_sse, args=(url, keys[Role.INVESTIGATOR], events, ready), daemon=True
        ).start()
        assert ready.wait(10), "the SSE stream did not open"

        def send(read: Any) -> httpx.Response:
            body = json.dumps(
                IngestBatch.from_store(uuid.uuid4(), [read], []).model_dump(mode="json")
            ).encode()
            headers = {
                **device.sign_request("POST", "/ingest", body),
                "Content-Type": "application/json",
            }
            return client.post("/ingest", content=body, headers=headers)

        quiet = send(unlisted)
        assert quiet.status_code == 200 and quiet.json()["alerts"] == []
        with pytest.raises(queue.Empty):
            events.get(timeout=1.5)
        assert Receiver.deliveries.empty()

        loud = send(hotlisted)
        assert loud.status_code == 200, loud.text
        assert len(loud.json()["alerts"]) == 1
        event = events.get(timeout=10)
        assert event["read_id"] == str(hotlisted.read_id)
        assert event["hotlist"] == "stolen" and event["reason"] == "stolen"
        headers, body = Receiver.deliveries.get(timeout=15)
        assert verify_body(
            secret, headers["X-Privplate-Timestamp"], body, headers["X-Privplate-Signature"]
        )
        assert json.loads(body)["alert"]["read_id"] == str(hotlisted.read_id)
        assert not verify_body(
            b"\0" * 32, headers["X-Privplate-Timestamp"], body, headers["X-Privplate-Signature"]
        )

        # A query as the investigator, and one that is denied, for the log scan below.
        window = {"start": "2026-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z"}
        client.post(
            "/queries",
            json={
                "plate": HOTLISTED,
                "purpose": "stolen-vehicle",
                "case_number": "C-1",
                "justification": "Stolen vehicle reported by the owner yesterday.",
                **window,
            },
            headers=as_role(Role.INVESTIGATOR),
        )
    receiver.shutdown()

    plates = [HOTLISTED, UNLISTED]
    logged = log_file.read_bytes()
    assert b"POST /ingest" in logged or b"/ingest" in logged  # the log did capture the run
    assert hits_in_bytes(logged, plates) == []
    with Deployment.open(home) as dep:
        url_db = dep.settings.resolved_database_url
    assert hits_in_bytes(dump_database(url_db), plates) == []
