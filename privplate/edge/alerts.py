"""Alerts on the edge: hotlist tokens of each epoch held in memory, matched as reads are made,
so an alert goes out (JSON line on stdout, and a webhook) even while the server is unreachable.

An alert names the read, camera, time and hotlist, never a plate.
"""

from __future__ import annotations

import json
import logging
import queue
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TextIO

from privplate.store.ingest import ReadIn

log = logging.getLogger(__name__)


class HotlistFeed(Protocol):
    """Hotlist tokens of one epoch: (token, hotlist name) pairs."""

    def epoch_tokens(self, epoch_id: int) -> list[tuple[bytes, str]]: ...


@dataclass(frozen=True)
class EdgeAlert:
    read_id: str
    camera_id: str
    observed_at: datetime
    epoch_id: int
    hotlists: tuple[str, ...]
    via_alternate: bool
    frame_clock: float

    def as_json(self) -> str:
        return json.dumps(
            {
                "type": "alert",
                "read_id": self.read_id,
                "camera_id": self.camera_id,
                "observed_at": self.observed_at.isoformat(),
                "epoch_id": self.epoch_id,
                "hotlists": list(self.hotlists),
                "via_alternate": self.via_alternate,
            },
            sort_keys=True,
        )


class Webhook:
    """POSTs alert JSON from a background thread, a few retries, never blocking the camera."""

    def __init__(self, url: str, *, attempts: int = 3) -> None:
        self.url = url
        self.attempts = attempts
        self.queue: queue.Queue[str | None] = queue.Queue(maxsize=1000)
        self.thread = threading.Thread(target=self._run, name="privplate-webhook", daemon=True)
        self.thread.start()

    def post(self, body: str) -> None:
        try:
            self.queue.put_nowait(body)
        except queue.Full:
            log.warning("webhook queue full: an alert was not posted (it is still on stdout)")

    def _run(self) -> None:
        while (body := self.queue.get()) is not None:
            for attempt in range(self.attempts):
                request = urllib.request.Request(  # noqa: S310 - operator-configured URL
                    self.url, data=body.encode(), headers={"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
                        break
                except OSError as exc:
                    log.warning(
                        "webhook post failed (%s), attempt %d", type(exc).__name__, attempt + 1
                    )
                    time.sleep(0.5 * 2**attempt)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=5)


class EdgeAlerts:
    def __init__(
        self,
        feed: HotlistFeed | None,
        *,
        out: TextIO | None = None,
        webhook: Webhook | None = None,
        on_alert: Callable[[EdgeAlert], None] | None = None,
        retry_seconds: float = 60.0,
        refresh_seconds: float = 60.0,
    ) -> None:
        self.feed = feed
        #: Hotlists change: held tokens are fetched again after ``refresh_seconds``; after a
        #: failed fetch the feed is left alone for ``retry_seconds``.
        self.retry_seconds = retry_seconds
        self.refresh_seconds = refresh_seconds
        self._failed_at: dict[int, float] = {}
        self._loaded_at: dict[int, float] = {}
        self.out = out or sys.stdout
        self.webhook = webhook
        self.on_alert = on_alert
        self._epochs: dict[int, dict[bytes, str]] = {}
        self.count = 0

    def load(self, epoch_id: int, tokens: list[tuple[bytes, str]]) -> None:
        """Hold ``tokens`` for ``epoch_id`` (replacing what was held); keep two epochs."""
        self._epochs[epoch_id] = dict(tokens)
        self._loaded_at[epoch_id] = time.monotonic()
        for old in sorted(self._epochs)[:-2]:
            del self._epochs[old]
            self._loaded_at.pop(old, None)

    def _tokens(self, epoch_id: int) -> dict[bytes, str]:
        held = self._epochs.get(epoch_id)
        if self.feed is None:
            return held or {}
        now = time.monotonic()
        if held is not None and now - self._loaded_at[epoch_id] < self.refresh_seconds:
            return held
        failed = self._failed_at.get(epoch_id)
        if failed is not None and now - failed < self.retry_seconds:
            return held or {}
        try:
            self.load(epoch_id, self.feed.epoch_tokens(epoch_id))
        except Exception as exc:
            # A feed failure must not stop the camera: keep what is held, retry later.
            self._failed_at[epoch_id] = now
            log.warning(
                "hotlist tokens unavailable (%s); alerts use what is held", type(exc).__name__
            )
            return held or {}
        self._failed_at.pop(epoch_id, None)
        return self._epochs[epoch_id]

    def check(self, read: ReadIn, frame_clock: float = 0.0) -> EdgeAlert | None:
        held = self._tokens(read.epoch_id)
        if not held:
            return None
        names: set[str] = set()
        best_hit = False
        for token in read.tokens:
            name = held.get(token.token)
            if name is not None:
                names.add(name)
                best_hit = best_hit or not token.is_alternate
        if not names:
            return None
        alert = EdgeAlert(
            str(read.read_id),
            read.camera_id,
            read.observed_at,
            read.epoch_id,
            tuple(sorted(names)),
            not best_hit,
            frame_clock,
        )
        self.count += 1
        line = alert.as_json()
        self.out.write(line + "\n")
        self.out.flush()
        if self.webhook is not None:
            self.webhook.post(line)
        if self.on_alert is not None:
            self.on_alert(alert)
        return alert
