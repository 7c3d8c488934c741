"""Webhook delivery: signed POSTs, retries, and a redirect counted as a failure."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from privplate.alerts import AlertInfo, verify_body
from privplate.alerts import webhooks as webhooks_mod
from privplate.deployment import Deployment
from privplate.services import Services


def _alert() -> AlertInfo:
    now = datetime.now(UTC)
    return AlertInfo(
        id=1, read_id=uuid.uuid4(), observed_at=now, camera_id="gate-1", hotlist="stolen",
        entry_id=uuid.uuid4(), reason="stolen", case_number="C-1", via_alternate=False,
        confidence=0.9, evidence_id=None, created_at=now,
    )  # fmt: skip


class _Server:
    def __init__(self, status: int, location: str = "") -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen.append((self.command, self.path, dict(self.headers), body))
                self.send_response(status if self.path == "/hook" else 204)
                if location:
                    self.send_header("Location", location)
                self.end_headers()

            do_POST = do_GET = _record  # noqa: N815 - http.server's names

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks_mod, "RETRY_DELAYS", (0.0, 0.0, 0.0))


def test_a_delivery_is_signed_and_counted(dep: Deployment) -> None:
    receiver = _Server(204)
    with Services(dep) as services:
        _, secret = services.webhooks.create(actor="admin", url=receiver.url + "/hook")
        services.webhooks.publish([_alert()])
        services.webhooks.stop()
        assert (services.webhooks.delivered, services.webhooks.failed) == (1, 0)
    receiver.close()
    [(method, path, headers, body)] = receiver.seen
    assert (method, path) == ("POST", "/hook")
    assert verify_body(
        bytes.fromhex(secret), headers["X-Privplate-Timestamp"], body,
        headers["X-Privplate-Signature"],
    )  # fmt: skip


def test_a_redirect_is_a_failed_delivery_and_is_not_followed(dep: Deployment) -> None:
    elsewhere = _Server(204)
    receiver = _Server(302, location=elsewhere.url + "/landing")
    with Services(dep) as services:
        services.webhooks.create(actor="admin", url=receiver.url + "/hook")
        services.webhooks.publish([_alert()])
        services.webhooks.stop()
        assert (services.webhooks.delivered, services.webhooks.failed) == (0, 1)
    receiver.close()
    elsewhere.close()
    assert [s[0] for s in receiver.seen] == ["POST"] * 4  # first try and three retries
    assert elsewhere.seen == []  # the signature never went to the redirect's address
