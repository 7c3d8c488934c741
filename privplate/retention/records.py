"""Retention of the server's own records: expired hotlist entries and their tokens, alerts
past the hit-read window, spent device nonces and batch receipts, expired sessions, the item keys of
expired unseal releases, and query records and compliance flags past the audit window."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Table, delete, or_, select

from privplate.deployment import Deployment
from privplate.store.server_models import (
    Alert,
    ComplianceFlag,
    DeviceBatch,
    DeviceNonce,
    HotlistEntry,
    HotlistToken,
    Query,
    Session,
)
from privplate.unseal.workflow import expire_release_keys

_entries: Table = HotlistEntry.__table__  # type: ignore[assignment]
_tokens: Table = HotlistToken.__table__  # type: ignore[assignment]
_alerts: Table = Alert.__table__  # type: ignore[assignment]
_nonces: Table = DeviceNonce.__table__  # type: ignore[assignment]
_batches: Table = DeviceBatch.__table__  # type: ignore[assignment]
_sessions: Table = Session.__table__  # type: ignore[assignment]
_queries: Table = Query.__table__  # type: ignore[assignment]
_flags: Table = ComplianceFlag.__table__  # type: ignore[assignment]
# A batch receipt only spares a retrying edge a second parse; reads de-duplicate by id anyway.
BATCH_RECEIPTS = timedelta(days=7)


def purge_records(dep: Deployment, now: datetime) -> dict[str, int]:
    s = dep.settings
    hit_cutoff = now - s.retention_window("hit_reads")
    audit_cutoff = now - s.retention_window("audit_entries")
    nonce_cutoff = now - 2 * timedelta(seconds=s.server.device_request_max_age_seconds)
    counts: dict[str, int] = {}
    with dep.db.write() as conn:
        dead = select(_entries.c.id).where(
            or_(_entries.c.expires_at <= now, _entries.c.removed_at.is_not(None))
        )
        counts["hotlist_tokens"] = conn.execute(
            delete(_tokens).where(_tokens.c.entry_id.in_(dead))
        ).rowcount
        counts["hotlist_entries"] = conn.execute(
            delete(_entries).where(
                or_(_entries.c.expires_at <= now, _entries.c.removed_at.is_not(None))
            )
        ).rowcount
        counts["alerts"] = conn.execute(
            delete(_alerts).where(_alerts.c.observed_at < hit_cutoff)
        ).rowcount
        counts["device_nonces"] = conn.execute(
            delete(_nonces).where(_nonces.c.seen_at < nonce_cutoff)
        ).rowcount
        counts["device_batches"] = conn.execute(
            delete(_batches).where(_batches.c.received_at < now - BATCH_RECEIPTS)
        ).rowcount
        counts["sessions"] = conn.execute(
            delete(_sessions).where(_sessions.c.expires_at <= now)
        ).rowcount
        counts["queries"] = conn.execute(
            delete(_queries).where(_queries.c.created_at < audit_cutoff)
        ).rowcount
        counts["unseal_release_keys"] = expire_release_keys(conn, now)
        counts["compliance_flags"] = conn.execute(
            delete(_flags).where(_flags.c.created_at < audit_cutoff)
        ).rowcount
    return counts
