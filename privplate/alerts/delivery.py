"""Webhook delivery from the outbox: a loop in every process that has the services.

Each process claims due rows of ``webhook_deliveries`` under a lease (``claimed_by`` names the
host and pid), commits the claim, POSTs, then records the result while the row is still its
claim: delivered on a 2xx, else retried with exponential backoff and jitter until
``webhooks.max_attempts``, then failed. A worker that dies mid-delivery leaves its lease to run
out, and another worker delivers the row. The loop wakes at once when this process records
alerts (:meth:`DeliveryLoop.wake`) and looks for due retries and expired leases every second.

The same loop delivers to the MQTT broker when ``[mqtt]`` is enabled: its endpoint is one more
row of ``webhooks`` (kind "mqtt"), and only a process with a publisher claims its rows; the
lease, retries and give-up are the ones above.

Delivery is at least once. Every POST of one (alert, webhook) carries the same
``X-Privplate-Delivery: <uuid>`` (also ``"delivery"`` in the signed body), so a receiver drops
the rare duplicate: a worker that died after the receiver's 2xx but before it recorded it.

Requests use the standard library's client, so an edge box in single-box mode needs no HTTP
library beyond what Python ships; redirects are not followed. A failure is logged with the
webhook id and the HTTP status or error class only.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import os
import queue
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from privplate.alerts.outbox import Claim, claim_due, mark_delivered, mark_failed_attempt
from privplate.alerts.records import AlertInfo, alerts_by_id
from privplate.errors import StoreError
from privplate.settings import WebhookSettings
from privplate.store.database import Database
from privplate.store.outbox_models import DeliveryStatus
from privplate.store.server_models import SinkKind

log = logging.getLogger("privplate.webhooks")
#: How often the loop looks for due retries and expired leases between wake-ups.
POLL_SECONDS = 1.0
#: Deliveries in flight at once per process (one slow receiver holds one thread).
DELIVERY_THREADS = 4
#: Beyond the attempt's timeout, what a graceful stop waits for the result to be recorded.
STOP_MARGIN_SECONDS = 5.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A receiver's redirect is a failed delivery: following it would send the signature to
    another address (as a GET without the body) and count the alert as delivered."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def sign_body(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_body(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """For receivers (and tests): constant-time check of a delivery's signature."""
    try:
        expected = sign_body(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)


def post(
    url: str, secret: bytes, delivery: uuid.UUID, body: bytes, timeout: float
) -> tuple[bool, str]:
    """One signed POST: whether it was answered 2xx, and the HTTP status or, when there was
    none, the error's class name."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "X-Privplate-Delivery": str(delivery),
        "X-Privplate-Timestamp": str(timestamp),
        "X-Privplate-Signature": sign_body(secret, timestamp, body),
    }
    request = urllib.request.Request(  # noqa: S310 - a registered http(s) receiver
        url, data=body, headers=headers, method="POST"
    )
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read()
            return True, str(answer.status)
    except urllib.error.HTTPError as exc:
        return False, str(exc.code)
    except urllib.error.URLError as exc:
        reason = exc.reason
        return False, type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return False, type(exc).__name__


def worker_name() -> str:
    """This process's name on its claims: host and pid (which worker holds a row), and a
    random part, so a restarted process with a reused pid is not taken for the old one."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Sink(Protocol):
    """Where one endpoint's deliveries go: an HTTP receiver, or the MQTT broker
    (privplate.mqtt.publisher). ``send`` makes one attempt and says whether it landed, with
    a short result for the row (an HTTP status or an error's class, never a body)."""

    def send(self, delivery: uuid.UUID, alert: AlertInfo, timeout: float) -> tuple[bool, str]:
        """One attempt to deliver ``alert`` (the same ``delivery`` id on every retry)."""
        ...


class ManagedSink(Sink, Protocol):
    """A sink with a connection of its own (the MQTT publisher), started and stopped with
    the process's delivery loop; its endpoint's rows are claimed only while it runs."""

    @property
    def running(self) -> bool:
        """Started and not stopped (connected or reconnecting)."""
        ...

    def start(self) -> None:
        """Connect (in the background) and keep reconnecting until stopped."""
        ...

    def stop(self) -> None:
        """Disconnect."""
        ...


@dataclass(frozen=True)
class HttpSink:
    """A registered webhook: the alert POSTed as signed JSON."""

    url: str
    secret: bytes = field(repr=False)

    def send(self, delivery: uuid.UUID, alert: AlertInfo, timeout: float) -> tuple[bool, str]:
        body = {"type": "alert", "delivery": str(delivery), "alert": alert.payload()}
        encoded = json.dumps(body, sort_keys=True).encode()
        return post(self.url, self.secret, delivery, encoded, timeout)


#: The sink of an active endpoint, by id (None: it went).
Targets = Callable[[uuid.UUID], Sink | None]


class DeliveryLoop:
    """One dispatcher thread claiming as many due rows as it has free delivery threads."""

    def __init__(
        self,
        *,
        db: Database,
        settings: WebhookSettings,
        targets: Targets,
        kinds: Callable[[], Collection[SinkKind]] = lambda: (SinkKind.HTTP,),
    ) -> None:
        self.db = db
        self.settings = settings
        self._targets = targets
        #: The endpoint kinds this process can deliver to (MQTT only with a publisher).
        self._kinds = kinds
        self.worker = ""
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._jobs: queue.Queue[Claim | None] = queue.Queue()
        self._in_flight = 0

    def start(self) -> None:
        with self._lock:  # ingests wake the loop from several threads at once
            if self._threads:
                return
            # Named here, not at construction: a worker forked after it has its own pid.
            self.worker = worker_name()
            self._stopping.clear()
            # Fresh: a worker that outlived the last stop must not find a stale stop marker.
            self._jobs = queue.Queue()
            self._threads = [threading.Thread(target=self._dispatch, name="webhooks", daemon=True)]
            self._threads += [
                threading.Thread(target=self._work, name=f"webhooks-{i}", daemon=True)
                for i in range(DELIVERY_THREADS)
            ]
            for thread in self._threads:
                thread.start()

    def wake(self) -> None:
        """This process recorded alerts: claim their rows now, not at the next poll."""
        self.start()
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Claim nothing more, finish the attempts already claimed (up to ``timeout``), then
        stop. Rows not yet claimed stay pending for any worker."""
        if timeout is None:
            timeout = self.settings.attempt_timeout_seconds + STOP_MARGIN_SECONDS
        with self._lock:
            threads, self._threads = self._threads, []
        if not threads:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake.set()
        dispatcher, *workers = threads
        dispatcher.join(timeout)
        for _ in workers:
            self._jobs.put(None)  # after every claim already queued: those are attempted
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads):
            log.error("webhooks: stopped with a delivery in flight; its lease runs out and "
                      "another worker retries it")  # fmt: skip

    def _dispatch(self) -> None:
        lease = timedelta(seconds=self.settings.lease_seconds)
        while not self._stopping.is_set():
            self._wake.clear()
            with self._lock:
                free = DELIVERY_THREADS - self._in_flight
            claims: list[Claim] = []
            if free > 0:
                try:
                    claims = claim_due(
                        self.db, worker=self.worker, limit=free, lease=lease, kinds=self._kinds()
                    )
                except (StoreError, SQLAlchemyError) as exc:
                    log.error("webhooks: claiming deliveries failed (%s)", type(exc).__name__)
            if claims:
                with self._lock:
                    self._in_flight += len(claims)
                for claim in claims:
                    self._jobs.put(claim)
                continue  # more may be due: look again (or wait for a free thread)
            self._wake.wait(POLL_SECONDS)

    def _work(self) -> None:
        while True:
            claim = self._jobs.get()
            if claim is None:
                return
            try:
                self._attempt(claim)
            except Exception as exc:  # a delivery thread outlives any one delivery
                log.error("webhook %s: delivery failed (%s)", claim.webhook_id, type(exc).__name__)
            finally:
                with self._lock:
                    self._in_flight -= 1
                self._wake.set()

    def _attempt(self, claim: Claim) -> None:
        alert = alerts_by_id(db=self.db, ids=[claim.alert_id]).get(claim.alert_id)
        target = self._targets(claim.webhook_id)
        if alert is None or target is None:
            return  # purged with its alert, or the webhook went: the row went or was failed
        ok, result = target.send(claim.id, alert, self.settings.attempt_timeout_seconds)
        if ok:
            if not mark_delivered(self.db, claim=claim, result=result):
                log.warning("webhook %s: delivered after another worker took the delivery "
                            "over (the receiver sees its id twice)", claim.webhook_id)  # fmt: skip
            return
        status = mark_failed_attempt(
            self.db,
            claim=claim,
            result=result,
            max_attempts=self.settings.max_attempts,
            first=self.settings.first_retry_seconds,
        )
        log.warning("webhook %s attempt %d failed (%s)", claim.webhook_id, claim.attempts, result)
        if status is DeliveryStatus.FAILED:
            log.error("webhook %s: alert %d not delivered after %d attempts",
                      claim.webhook_id, claim.alert_id, claim.attempts)  # fmt: skip
