"""Webhooks: each alert is POSTed as JSON to every active webhook, signed with HMAC-SHA256.

Receivers check ``X-Privplate-Signature: sha256=<hex>`` over ``<timestamp>.<body>`` with the
secret shown once at creation, and refuse timestamps older than a few minutes. Delivery runs on
a background thread with retries; a failure is logged with the webhook id and status only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import nacl.secret
from sqlalchemy import insert, select, update

from privplate.alerts.records import AlertInfo
from privplate.audit import AuditLog
from privplate.errors import InvalidRequest, NotFound
from privplate.server_secret import ServerSecret
from privplate.store.database import Database
from privplate.store.server_models import Webhook

log = logging.getLogger("privplate.webhooks")
RETRY_DELAYS = (0.5, 2.0, 8.0)
ATTEMPT_TIMEOUT = 5.0
#: Long enough for one delivery's attempts and their delays.
DRAIN_SECONDS = sum(RETRY_DELAYS) + (len(RETRY_DELAYS) + 1) * ATTEMPT_TIMEOUT


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A receiver's redirect is a failed delivery: following it would send the signature to
    another address (as a GET without the body) and count the alert as delivered."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class WebhookInfo:
    id: uuid.UUID
    url: str
    created_by: str
    created_at: datetime
    active: bool


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


class Webhooks:
    def __init__(self, *, db: Database, audit: AuditLog, secret: ServerSecret) -> None:
        self.db = db
        self.audit = audit
        self._box = nacl.secret.SecretBox(secret.subkey("webhook-box"))
        self._queue: queue.Queue[tuple[dict[str, Any], int] | None] = queue.Queue(10_000)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    # -- registry --------------------------------------------------------------------------

    def create(self, *, actor: str, url: str) -> tuple[WebhookInfo, str]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
            raise InvalidRequest("a webhook URL is an http:// or https:// URL of a receiver")
        secret = secrets.token_bytes(32)
        info = WebhookInfo(uuid.uuid4(), url, actor, datetime.now(UTC), True)
        with self.db.write() as conn:
            conn.execute(
                insert(Webhook).values(
                    id=info.id,
                    url=url,
                    secret_box=bytes(self._box.encrypt(secret)),
                    created_by=actor,
                    created_at=info.created_at,
                    active=True,
                )
            )
            self.audit.append(
                conn,
                actor=actor,
                action="webhooks.created",
                details={"webhook": str(info.id), "url": url},
            )
        return info, secret.hex()

    def all(self) -> list[WebhookInfo]:
        with self.db.read() as conn:
            rows = conn.execute(select(Webhook).order_by(Webhook.created_at)).all()
        return [WebhookInfo(r.id, r.url, r.created_by, r.created_at, r.active) for r in rows]

    def deactivate(self, *, actor: str, webhook_id: uuid.UUID) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                update(Webhook)
                .where(Webhook.id == webhook_id, Webhook.active.is_(True))
                .values(active=False)
            )
            if done.rowcount == 0:
                raise NotFound("no active webhook with this id")
            self.audit.append(
                conn,
                actor=actor,
                action="webhooks.deactivated",
                details={"webhook": str(webhook_id)},
            )

    def _targets(self) -> list[tuple[uuid.UUID, str, bytes]]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(Webhook.id, Webhook.url, Webhook.secret_box).where(Webhook.active.is_(True))
            ).all()
        return [(r.id, r.url, bytes(self._box.decrypt(r.secret_box))) for r in rows]

    # -- delivery --------------------------------------------------------------------------

    def start(self) -> None:
        with self._start_lock:  # ingests publish from several threads at once
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = DRAIN_SECONDS) -> None:
        """Deliver what is queued (with its retries, up to ``timeout``), then stop."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)
            if thread.is_alive():
                log.error("webhooks: stopped with deliveries still queued")

    def publish(self, alerts: list[AlertInfo]) -> None:
        self.start()
        for alert in alerts:
            try:
                self._queue.put_nowait((alert.payload(), 0))
            except queue.Full:
                self.failed += 1
                log.error("webhook queue full; alert %s not delivered by webhook", alert.id)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            payload, _ = item
            body = json.dumps({"type": "alert", "alert": payload}, sort_keys=True).encode()
            for hook_id, url, secret in self._targets():
                self._deliver(hook_id, url, secret, body)

    def _deliver(self, hook_id: uuid.UUID, url: str, secret: bytes, body: bytes) -> None:
        # The standard library's client, so an edge box with alerts in single-box mode needs
        # no HTTP library beyond what Python ships.
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            time.sleep(delay)
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "X-Privplate-Timestamp": str(timestamp),
                "X-Privplate-Signature": sign_body(secret, timestamp, body),
            }
            request = urllib.request.Request(  # noqa: S310 - a registered http(s) receiver
                url, data=body, headers=headers, method="POST"
            )
            try:
                with _OPENER.open(request, timeout=ATTEMPT_TIMEOUT) as answer:
                    answer.read()
                self.delivered += 1
                return
            except urllib.error.HTTPError as exc:
                status = str(exc.code)
            except (OSError, ValueError) as exc:
                status = type(exc).__name__
            log.warning("webhook %s attempt %d failed (%s)", hook_id, attempt + 1, status)
        self.failed += 1
        log.error("webhook %s: alert not delivered after %d attempts", hook_id, attempt + 1)
