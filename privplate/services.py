"""The deployment's services, built once from a :class:`Deployment`: what the API server and
the CLI commands that act as a user (hotlist import, query) share."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection

from privplate.alerts import AlertBroker, AlertInfo, Webhooks, record_alerts
from privplate.alerts.device_alerts import check_health
from privplate.alerts.notify import AlertListener
from privplate.deployment import Deployment
from privplate.devices.refusals import RefusalLog
from privplate.errors import NotReady
from privplate.hotlists import Hotlists, HotlistTokens, PlateBox
from privplate.identity.throttle import SignInLimits
from privplate.mqtt.publisher import MqttPublisher, endpoint_url
from privplate.policy.approvals import SearchApprovals
from privplate.policy.queries import QueryService
from privplate.policy.rules import PurposePolicy
from privplate.server_secret import read_server_secret
from privplate.store.evidence_keys import active_evidence_key
from privplate.store.ingest import AfterIngest, EvidenceIn, IngestResult, ReadIn, ingest_reads
from privplate.unseal.workflow import UnsealService


class Services:
    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        settings = dep.settings
        self.secret = read_server_secret(settings.server_secret_path)
        self.box = PlateBox(self.secret)
        self.policy = PurposePolicy.from_settings(settings)
        self.hotlist_tokens = HotlistTokens(db=dep.db, keyring=dep.keyring, box=self.box)
        self.refusals = RefusalLog(dep.audit)
        self.hotlists = Hotlists(
            db=dep.db,
            audit=dep.audit,
            box=self.box,
            tokens=self.hotlist_tokens,
            settings=settings.hotlists,
            policy=self.policy,
            fold=dep.fold,
            entry_window=settings.retention_window("hotlist_entries"),
        )
        self.queries = QueryService(
            db=dep.db,
            audit=dep.audit,
            keyring=dep.keyring,
            policy=self.policy,
            settings=settings.queries,
            fold=dep.fold,
        )
        #: Searches whose purpose needs a second person; also the query service's gate.
        self.search_approvals = SearchApprovals(
            db=dep.db, audit=dep.audit, queries=self.queries, secret=self.secret
        )
        self.unseal = UnsealService(
            db=dep.db,
            audit=dep.audit,
            secret=self.secret,
            settings=settings.unseal,
            policy=self.policy,
        )
        self.webhooks = Webhooks(
            db=dep.db, audit=dep.audit, secret=self.secret, settings=settings.webhooks
        )
        #: With ``[mqtt]``: alerts (the outbox's MQTT endpoint), Home Assistant discovery and
        #: camera state; it connects when the delivery loop starts (``webhooks.start()``).
        self.mqtt: MqttPublisher | None = None
        if settings.mqtt.enabled:
            self.mqtt = MqttPublisher(db=dep.db, settings=settings.mqtt, resolve=settings.path)
            self.webhooks.attach_mqtt(self.mqtt)
            dep.camera_listeners.append(self.mqtt.cameras_changed)
        self.webhooks.sync_mqtt_endpoint(
            actor=dep.actor, enabled=settings.mqtt.enabled, url=endpoint_url(settings.mqtt)
        )
        self.broker = AlertBroker()
        #: Wakes the broker for alerts any process records (PostgreSQL); started by the server.
        self.alert_listener = AlertListener(dep.db, self.broker)
        #: Process counters for the metrics endpoint (never per camera, place or plate).
        self.counters: Counter[str] = Counter()

    @classmethod
    def open(cls, dep: Deployment) -> Self:
        return cls(dep)

    def ingest(
        self,
        reads: Sequence[ReadIn],
        evidence: Sequence[EvidenceIn] = (),
        *,
        actor: str,
        then: AfterIngest | None = None,
        now: datetime | None = None,
    ) -> tuple[IngestResult, list[AlertInfo]]:
        """Store a batch, matching it against the hotlists first; alerts (and their webhook
        outbox rows) are recorded in the batch's transaction, and consoles and this process's
        webhook delivery loop are woken once it has committed.

        The one ingest path: the server's ``POST /ingest`` and the edge in single-box mode both
        come here, so every read gets the same hotlist match, hit retention, alert, per-camera
        count and audit steps."""
        hits = self.hotlist_tokens.match(reads)
        by_id = {r.read_id: r for r in reads}
        alerts: list[AlertInfo] = []

        def after(conn: Connection, result: IngestResult) -> None:
            inserted = set(result.inserted_ids)
            fresh = [h for h in hits if h.read_id in inserted]
            alerts.extend(
                record_alerts(conn, audit=self.dep.audit, actor=actor, hits=fresh, reads=by_id)
            )
            if then is not None:
                then(conn, result)

        hit_ids: set[uuid.UUID] = {h.read_id for h in hits}
        dep = self.dep
        result = ingest_reads(
            db=dep.db,
            reads=reads,
            evidence=evidence,
            windows=dep.windows,
            limits=dep.limits,
            hits=hit_ids,
            now=now,
            then=after,
        )
        self.counters["ingested_reads"] += result.inserted
        self.counters["alerts"] += len(alerts)
        if alerts:
            self.broker.notify()
            self.webhooks.publish(alerts)
        return result, alerts

    def check_device_health(self, now: datetime | None = None) -> list[AlertInfo]:
        """One check of the edges' latest health reports (privplate.alerts.device_alerts):
        silent-camera and spool-backlog alerts raised or cleared, then, once committed, sent
        to the streams and the outbox's delivery loop like hotlist alerts."""
        alerts = check_health(
            db=self.dep.db, audit=self.dep.audit, settings=self.dep.settings.health, now=now
        )
        self.counters["device_alerts"] += len(alerts)
        if alerts:
            self.broker.notify()
            self.webhooks.publish(alerts)
        return alerts

    @property
    def sign_in_limits(self) -> SignInLimits:
        """The throttle every network sign-in (API, console) counts against: the same keyed
        rows, so switching surface gives an attacker no extra attempts."""
        return SignInLimits.from_settings(self.dep.settings.server, self.secret)

    @property
    def session_idle(self) -> timedelta:
        """How long a session may go unused (``server.session_idle_minutes``)."""
        return timedelta(minutes=self.dep.settings.server.session_idle_minutes)

    def evidence_public_key(self) -> str | None:
        """The active evidence key X (from the last ceremony), else the configured one."""
        with self.dep.db.read() as conn:
            key = active_evidence_key(conn)
        if key is not None:
            return key.public_key.hex()
        return self.dep.settings.evidence_public_key or None

    def close(self) -> None:
        self.alert_listener.stop()
        self.webhooks.stop()
        if self.mqtt is not None:
            self.dep.camera_listeners.remove(self.mqtt.cameras_changed)
        self.refusals.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def services_in(state: Any) -> Services:
    """The services of a running server (its app state), for the API's and the console's
    dependencies alike; NotReady (503) while the server waits for its database or keys."""
    services: Services | None = getattr(state, "services", None)
    if services is None:
        raise NotReady(f"the server is not ready: {getattr(state, 'not_ready', 'starting')}")
    return services
