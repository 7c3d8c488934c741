"""A webhook receiver on a local port (http.server in a thread), real alerts to send it, and
a look at the outbox rows."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from privplate.alerts import AlertInfo
from privplate.deployment import Deployment
from privplate.errors import AlreadyExists
from privplate.hotlists import EntryIn, HotlistSource
from privplate.services import Services
from privplate.store.outbox_models import WebhookDelivery
from tests import factories

HOTLIST = "stolen"


@dataclass(frozen=True)
class Receipt:
    """One POST as the receiver saw it (every one, duplicates included)."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def delivery(self) -> str:
        return self.headers["X-Privplate-Delivery"]

    @property
    def alert_id(self) -> int:
        alert_id: int = json.loads(self.body)["alert"]["id"]
        return alert_id


class Receiver:
    """Answers each POST with ``status(n)`` (n: how many came before it); with ``hold_first``
    the first request is kept open, unanswered, until :attr:`release` is set."""

    def __init__(
        self,
        status: Callable[[int], int] = lambda _n: 204,
        *,
        hold_first: bool = False,
        port: int = 0,
        location: str = "",
    ) -> None:
        self.receipts: list[Receipt] = []
        self.held = threading.Event()
        self.release = threading.Event()
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with lock:
                    n = len(receiver.receipts)
                    receiver.receipts.append(Receipt(self.path, dict(self.headers), body))
                if hold_first and n == 0:
                    receiver.held.set()
                    receiver.release.wait(120)
                # The sender may be gone (killed while this was held): nothing to answer.
                with contextlib.suppress(OSError):
                    self.send_response(status(n))
                    if location:
                        self.send_header("Location", location)
                    self.end_headers()

            do_GET = do_POST  # noqa: N815 - a followed redirect would arrive as a GET

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def deliveries(self) -> set[str]:
        return {r.delivery for r in self.receipts}

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``check`` until it holds; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


def plates(count: int) -> list[str]:
    return [f"{i:03d}WHK" for i in range(count)]


def hotlist_of(services: Services, wanted: Sequence[str], camera: str = "gate-1") -> None:
    """A camera and a hotlist holding ``wanted``, so a read of any of them raises an alert."""
    with contextlib.suppress(AlreadyExists):  # the API fixture registered it already
        services.dep.add_camera(camera, name=f"test {camera}")
    services.hotlists.create(actor="op", name=HOTLIST, source=HotlistSource.STOLEN_VEHICLE)
    services.hotlists.add_entries(
        actor="op",
        hotlist=HOTLIST,
        entries=[EntryIn(p, "reported stolen", f"C-{i}") for i, p in enumerate(wanted)],
    )


def raise_alerts(services: Services, wanted: Sequence[str]) -> list[AlertInfo]:
    """One ingest per plate, as an edge would send them; the alerts raised."""
    raised: list[AlertInfo] = []
    for plate in wanted:
        _, alerts = services.ingest([factories.read(services.dep, plate)], actor="edge-1")
        raised += alerts
    assert len(raised) == len(wanted)
    return raised


def outbox(dep: Deployment) -> list[Any]:
    """Every delivery row, oldest first."""
    with dep.db.read() as conn:
        return list(
            conn.execute(
                select(WebhookDelivery).order_by(
                    WebhookDelivery.alert_id, WebhookDelivery.webhook_id
                )
            ).all()
        )


def settled(dep: Deployment) -> bool:
    """No delivery left pending."""
    return all(r.status != "pending" for r in outbox(dep))


def delivery_ids(dep: Deployment, webhook_id: uuid.UUID) -> dict[str, int]:
    """Delivery id -> alert id, of one webhook's rows."""
    return {str(r.id): int(r.alert_id) for r in outbox(dep) if r.webhook_id == webhook_id}
