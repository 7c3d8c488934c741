"""Edge alerts: hotlist tokens held per epoch, JSON lines on stdout and a webhook POST, with
read id, camera, time and hotlist, never a plate."""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from privplate.edge.alerts import EdgeAlerts, Webhook
from privplate.store.ingest import ReadIn, TokenIn
from privplate.tokens import canonical_plate, plate_token

KEY = bytes(range(32))
PLATE = "KX42ZQB"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    got = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()
            got.set()

        def log_message(self, *args: object) -> None:
            del args

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()


class Feed:
    def __init__(self) -> None:
        self.asked: list[int] = []

    def epoch_tokens(self, epoch_id: int) -> list[tuple[bytes, str]]:
        self.asked.append(epoch_id)
        return [(plate_token(KEY, canonical_plate(PLATE)), "stolen-vehicles")]


def read(texts: list[str], epoch: int = 5) -> ReadIn:
    tokens = [TokenIn(plate_token(KEY, canonical_plate(t)), i > 0) for i, t in enumerate(texts)]
    return ReadIn(uuid.uuid4(), "gate-1", datetime.now(UTC), epoch, tokens, 0.9)


def test_alert_on_best_and_on_alternate_reading(receiver: tuple[str, list[bytes]]) -> None:
    url, bodies = receiver
    out = io.StringIO()
    feed = Feed()
    webhook = Webhook(url)
    alerts = EdgeAlerts(feed, out=out, webhook=webhook)
    assert alerts.check(read(["KX42Z0B"])) is None  # one character off, no alternates
    hit = alerts.check(read([PLATE]))
    via_alternate = alerts.check(read(["KX42Z0B", PLATE]))
    webhook.close()
    assert hit is not None and not hit.via_alternate
    assert via_alternate is not None and via_alternate.via_alternate
    assert feed.asked == [5]  # tokens fetched once per epoch, then held
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["via_alternate"] for x in lines] == [False, True]
    assert all(x["hotlists"] == ["stolen-vehicles"] and x["camera_id"] == "gate-1" for x in lines)
    assert [json.loads(b) for b in bodies] == lines
    everything = out.getvalue().encode() + b"".join(bodies)
    assert PLATE.encode() not in everything and b"KX42Z0B" not in everything


def test_alerts_keep_working_when_the_feed_fails() -> None:
    class Down:
        calls = 0

        def epoch_tokens(self, epoch_id: int) -> list[tuple[bytes, str]]:
            self.calls += 1
            raise OSError(f"server unreachable for epoch {epoch_id}")

    down = Down()
    alerts = EdgeAlerts(down, out=io.StringIO(), retry_seconds=3600)
    assert alerts.check(read([PLATE])) is None
    assert alerts.check(read([PLATE])) is None
    assert down.calls == 1  # the camera does not wait on a dead server for every read
    alerts.load(5, Feed().epoch_tokens(5))  # tokens held from before the outage
    assert alerts.check(read([PLATE])) is not None


def test_held_tokens_are_refreshed_and_only_two_epochs_kept() -> None:
    feed = Feed()
    alerts = EdgeAlerts(feed, out=io.StringIO(), refresh_seconds=0.0)
    alerts.check(read([PLATE], epoch=5))
    alerts.check(read([PLATE], epoch=5))
    assert feed.asked == [5, 5]  # refreshed: entries added to a hotlist reach the edge
    alerts.load(7, [])
    alerts.load(9, [])
    assert sorted(alerts._epochs) == [7, 9]
