"""Webhooks: each alert is POSTed as JSON to every active webhook, signed with HMAC-SHA256.

Receivers check ``X-Privplate-Signature: sha256=<hex>`` over ``<timestamp>.<body>`` with the
secret shown once at creation, and refuse timestamps older than a few minutes. Deliveries go
through a transactional outbox: a row per (alert, active webhook) is written in the alert's own
transaction, and every server process's delivery loop (privplate.alerts.delivery) sends them,
so a delivery survives a restart or the death of the worker that raised the alert. Delivery is
at least once: ``X-Privplate-Delivery`` is the same on every attempt of one (alert, webhook),
for the receiver to drop the rare duplicate.
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import nacl.secret
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from privplate.alerts.delivery import (
    DeliveryLoop,
    HttpSink,
    ManagedSink,
    Sink,
    sign_body,
    verify_body,
)
from privplate.alerts.outbox import DeliveryInfo, deliveries_of, fail_pending_of, status_counts
from privplate.alerts.records import AlertInfo
from privplate.audit import AuditLog
from privplate.errors import InvalidRequest, NotFound
from privplate.server_secret import ServerSecret
from privplate.settings import WebhookSettings
from privplate.store.database import Database
from privplate.store.outbox_models import DeliveryStatus
from privplate.store.server_models import SinkKind, Webhook

__all__ = ["MQTT_ENDPOINT_ID", "WebhookInfo", "Webhooks", "sign_body", "verify_body"]

#: The one outbox endpoint of the MQTT broker (``[mqtt]``): a fixed id, so every process
#: and every restart finds the same row, and its pending deliveries survive a change of host.
MQTT_ENDPOINT_ID = uuid.UUID("5d1c6f3e-9b0a-5c8e-8f3a-6d71a2b4c901")


@dataclass(frozen=True)
class WebhookInfo:
    id: uuid.UUID
    url: str
    created_by: str
    created_at: datetime
    active: bool


class Webhooks:
    def __init__(
        self,
        *,
        db: Database,
        audit: AuditLog,
        secret: ServerSecret,
        settings: WebhookSettings | None = None,
    ) -> None:
        self.db = db
        self.audit = audit
        self._box = nacl.secret.SecretBox(secret.subkey("webhook-box"))
        #: Decrypted secrets by webhook id (a webhook's URL and secret never change).
        self._known: dict[uuid.UUID, HttpSink] = {}
        #: The MQTT publisher, once attached: while it runs, this process also claims MQTT
        #: deliveries.
        self._mqtt: ManagedSink | None = None
        self.loop = DeliveryLoop(
            db=db, settings=settings or WebhookSettings(), targets=self._target, kinds=self._kinds
        )

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
        """The registered HTTP receivers (the MQTT endpoint follows ``[mqtt]`` instead)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(Webhook)
                .where(Webhook.kind == SinkKind.HTTP.value)
                .order_by(Webhook.created_at)
            ).all()
        return [WebhookInfo(r.id, r.url, r.created_by, r.created_at, r.active) for r in rows]

    def deactivate(self, *, actor: str, webhook_id: uuid.UUID) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                update(Webhook)
                .where(
                    Webhook.id == webhook_id,
                    Webhook.active.is_(True),
                    Webhook.kind == SinkKind.HTTP.value,
                )
                .values(active=False)
            )
            if done.rowcount == 0:
                raise NotFound("no active webhook with this id")
            given_up = fail_pending_of(conn, webhook_id)
            self.audit.append(
                conn,
                actor=actor,
                action="webhooks.deactivated",
                details={"webhook": str(webhook_id), "pending_given_up": given_up},
            )

    def deliveries(self, webhook_id: uuid.UUID, *, limit: int = 100) -> list[DeliveryInfo]:
        """The webhook's most recent deliveries, newest first."""
        with self.db.read() as conn:
            found = conn.execute(select(Webhook.id).where(Webhook.id == webhook_id)).scalar()
        if found is None:
            raise NotFound("no webhook with this id")
        return deliveries_of(self.db, webhook_id, limit=limit)

    def _target(self, webhook_id: uuid.UUID) -> Sink | None:
        if webhook_id == MQTT_ENDPOINT_ID:
            return self._mqtt
        known = self._known.get(webhook_id)
        if known is not None:
            return known
        with self.db.read() as conn:
            row = conn.execute(
                select(Webhook.url, Webhook.secret_box).where(
                    Webhook.id == webhook_id, Webhook.kind == SinkKind.HTTP.value
                )
            ).first()
        if row is None:
            return None
        known = HttpSink(row.url, bytes(self._box.decrypt(row.secret_box)))
        self._known[webhook_id] = known
        return known

    def _kinds(self) -> tuple[SinkKind, ...]:
        if self._mqtt is not None and self._mqtt.running:
            return (SinkKind.HTTP, SinkKind.MQTT)
        return (SinkKind.HTTP,)

    # -- the MQTT endpoint -----------------------------------------------------------------

    def attach_mqtt(self, sink: ManagedSink) -> None:
        """Deliver this process's claims of the MQTT endpoint to ``sink`` (the publisher),
        which starts and stops with the delivery loop (:meth:`start`, :meth:`stop`)."""
        self._mqtt = sink

    def sync_mqtt_endpoint(self, *, actor: str, enabled: bool, url: str) -> None:
        """Keep the MQTT endpoint's row in step with ``[mqtt]``: active (alerts get an MQTT
        delivery row from now on) while enabled, inactive with its pending deliveries given
        up once disabled. Audited when it changes; a read only when it does not."""
        with self.db.read() as conn:
            row = conn.execute(
                select(Webhook.active, Webhook.url).where(Webhook.id == MQTT_ENDPOINT_ID)
            ).first()
        if (row is None and not enabled) or (
            row is not None and bool(row.active) == enabled and row.url == url
        ):
            return
        # IntegrityError: another process starting at the same moment inserted it first.
        with contextlib.suppress(IntegrityError):
            self._write_mqtt_endpoint(actor=actor, enabled=enabled, url=url, new=row is None)

    def _write_mqtt_endpoint(self, *, actor: str, enabled: bool, url: str, new: bool) -> None:
        with self.db.write() as conn:
            if new:
                conn.execute(
                    insert(Webhook).values(
                        id=MQTT_ENDPOINT_ID,
                        kind=SinkKind.MQTT.value,
                        url=url,
                        secret_box=b"",
                        created_by=actor,
                        created_at=datetime.now(UTC),
                        active=True,
                    )
                )
            else:
                conn.execute(
                    update(Webhook)
                    .where(Webhook.id == MQTT_ENDPOINT_ID)
                    .values(active=enabled, url=url)
                )
            given_up = 0 if enabled else fail_pending_of(conn, MQTT_ENDPOINT_ID)
            self.audit.append(
                conn,
                actor=actor,
                action="mqtt.enabled" if enabled else "mqtt.disabled",
                details={
                    "endpoint": str(MQTT_ENDPOINT_ID),
                    "url": url,
                    "pending_given_up": given_up,
                },
            )

    # -- delivery (privplate.alerts.delivery) ----------------------------------------------

    def start(self) -> None:
        """Start this process's outbox delivery: the loop and, with ``[mqtt]``, the MQTT
        publisher (the server and the single-box edge call this at start)."""
        if self._mqtt is not None:
            self._mqtt.start()
        self.loop.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the deliveries this process has claimed, then stop its loop (and the
        MQTT publisher)."""
        self.loop.stop(timeout)
        if self._mqtt is not None:
            self._mqtt.stop()

    def publish(self, alerts: list[AlertInfo]) -> None:
        """Wake the delivery loop after ``alerts`` committed (their outbox rows with them)."""
        if alerts:
            self.loop.wake()

    @property
    def delivered(self) -> int:
        """Deliveries made, across every worker (rows retention has not yet purged)."""
        return status_counts(self.db)[DeliveryStatus.DELIVERED]

    @property
    def failed(self) -> int:
        """Deliveries given up, across every worker (rows retention has not yet purged)."""
        return status_counts(self.db)[DeliveryStatus.FAILED]
