"""The webhook outbox's rows: written with each alert, claimed under a lease by whichever
process's delivery loop gets there first, and marked with each attempt's result. An endpoint
is an HTTP receiver or the MQTT broker (``Webhook.kind``): the same rows and rules for both.

PostgreSQL claims with ``SELECT ... FOR UPDATE SKIP LOCKED``, so several workers take disjoint
rows without waiting on each other; SQLite takes the same claim under its one write lock. A
lease that ran out (its worker died mid-delivery) makes the row claimable again.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, func, insert, or_, select, update

from privplate.store.database import Database
from privplate.store.outbox_models import DeliveryStatus, WebhookDelivery
from privplate.store.server_models import SinkKind, Webhook

#: Each retry waits this many times longer than the one before (0.5 s, 2 s, 8 s, ...), up to
#: MAX_BACKOFF, plus up to a quarter more at random so a receiver back up is not hit at once.
BACKOFF_FACTOR = 4.0
MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds the lease on, to attempt now."""

    id: uuid.UUID
    alert_id: int
    webhook_id: uuid.UUID
    attempts: int
    #: Who claimed it: only that name may record the attempt's result.
    worker: str


@dataclass(frozen=True)
class DeliveryInfo:
    """What the deliveries listing shows: never a body, a secret or a plate."""

    id: uuid.UUID
    alert_id: int
    webhook_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    last_result: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


def enqueue_deliveries(conn: Connection, alert_ids: Sequence[int], now: datetime) -> int:
    """One pending row per (alert, active webhook), in the caller's (the alert's)
    transaction: it commits or rolls back with the alerts. Returns the rows written."""
    if not alert_ids:
        return 0
    hooks = conn.execute(select(Webhook.id).where(Webhook.active.is_(True))).scalars().all()
    rows = [
        {
            "id": uuid.uuid4(),
            "alert_id": alert_id,
            "webhook_id": hook_id,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for alert_id in alert_ids
        for hook_id in hooks
    ]
    if rows:
        conn.execute(insert(WebhookDelivery), rows)
    return len(rows)


def claim_due(
    db: Database,
    *,
    worker: str,
    limit: int,
    lease: timedelta,
    now: datetime | None = None,
    kinds: Collection[SinkKind] = (SinkKind.HTTP,),
) -> list[Claim]:
    """Take the lease on up to ``limit`` due rows (pending, retry time reached, no live
    lease, endpoint still active and of one of the ``kinds`` this worker can deliver to),
    counting the attempt; committed before any POST or publish."""
    if limit <= 0 or not kinds:
        return []
    now = now or datetime.now(UTC)
    d = WebhookDelivery
    due = (
        select(d.id)
        .join(Webhook, Webhook.id == d.webhook_id)
        .where(
            d.status == DeliveryStatus.PENDING.value,
            d.next_attempt_at <= now,
            or_(d.claimed_until.is_(None), d.claimed_until < now),
            Webhook.active.is_(True),
            Webhook.kind.in_([k.value for k in kinds]),
        )
        .order_by(d.next_attempt_at)
        .limit(limit)
        # SQLite compiles no FOR UPDATE: its write transaction (BEGIN IMMEDIATE) already
        # keeps every other claimer out until this one commits.
        .with_for_update(skip_locked=True, of=d)
    )
    with db.write() as conn:
        ids = conn.execute(due).scalars().all()
        if not ids:
            return []
        rows = conn.execute(
            update(d)
            .where(d.id.in_(ids))
            .values(claimed_by=worker, claimed_until=now + lease, attempts=d.attempts + 1)
            .returning(d.id, d.alert_id, d.webhook_id, d.attempts)
        ).all()
    return [Claim(r.id, int(r.alert_id), r.webhook_id, int(r.attempts), worker) for r in rows]


def _still_ours(claim: Claim) -> list[ColumnElement[bool]]:
    d = WebhookDelivery
    return [
        d.id == claim.id,
        d.claimed_by == claim.worker,
        d.claimed_until.is_not(None),
        d.status == DeliveryStatus.PENDING.value,
    ]


def mark_delivered(db: Database, *, claim: Claim, result: str) -> bool:
    """Record a 2xx, if the row is still this worker's claim; False if another worker took
    it over meanwhile (our lease ran out), whose delivery then stands."""
    now = datetime.now(UTC)
    with db.write() as conn:
        done = conn.execute(
            update(WebhookDelivery)
            .where(*_still_ours(claim))
            .values(
                status=DeliveryStatus.DELIVERED.value,
                delivered_at=now,
                last_result=result,
                claimed_until=None,
            )
        )
    return done.rowcount == 1


def retry_delay(attempts: int, first: float) -> timedelta:
    """The wait after the ``attempts``-th failed attempt, with jitter."""
    base = first * BACKOFF_FACTOR ** max(0, attempts - 1)
    seconds = min(base, MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * (1.0 + random.random() / 4))  # noqa: S311 - jitter


def mark_failed_attempt(
    db: Database, *, claim: Claim, result: str, max_attempts: int, first: float
) -> DeliveryStatus | None:
    """Record a failed attempt: retry later with backoff, or give up as failed after
    ``max_attempts``. None if the row is no longer this worker's claim."""
    now = datetime.now(UTC)
    give_up = claim.attempts >= max_attempts
    status = DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING
    with db.write() as conn:
        done = conn.execute(
            update(WebhookDelivery)
            .where(*_still_ours(claim))
            .values(
                status=status.value,
                last_result=result,
                claimed_until=None,
                next_attempt_at=now if give_up else now + retry_delay(claim.attempts, first),
            )
        )
    return status if done.rowcount == 1 else None


def fail_pending_of(conn: Connection, webhook_id: uuid.UUID) -> int:
    """A deactivated webhook's pending rows are given up (in the deactivation's
    transaction): nothing is sent to it any more."""
    d = WebhookDelivery
    done = conn.execute(
        update(d)
        .where(d.webhook_id == webhook_id, d.status == DeliveryStatus.PENDING.value)
        .values(status=DeliveryStatus.FAILED.value, last_result="deactivated", claimed_until=None)
    )
    return int(done.rowcount)


def deliveries_of(db: Database, webhook_id: uuid.UUID, *, limit: int = 100) -> list[DeliveryInfo]:
    """A webhook's most recent delivery rows, newest first."""
    d = WebhookDelivery
    stmt = (
        select(d)
        .where(d.webhook_id == webhook_id)
        .order_by(d.created_at.desc(), d.alert_id.desc())
        .limit(limit)
    )
    with db.read() as conn:
        rows = conn.execute(stmt).all()
    return [
        DeliveryInfo(
            id=r.id,
            alert_id=int(r.alert_id),
            webhook_id=r.webhook_id,
            status=DeliveryStatus(r.status),
            attempts=int(r.attempts),
            last_result=r.last_result,
            created_at=r.created_at,
            next_attempt_at=r.next_attempt_at,
            delivered_at=r.delivered_at,
        )
        for r in rows
    ]


def status_counts(db: Database) -> dict[DeliveryStatus, int]:
    """Rows per status across the deployment (every worker's deliveries), for the metrics."""
    d = WebhookDelivery
    with db.read() as conn:
        rows = conn.execute(select(d.status, func.count()).group_by(d.status)).all()
    counts = dict.fromkeys(DeliveryStatus, 0)
    for status, count in rows:
        counts[DeliveryStatus(status)] = int(count)
    return counts
