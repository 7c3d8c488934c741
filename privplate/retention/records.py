"""Retention of the server's own records: expired hotlist entries and their tokens, alerts
past the hit-read window, spent device nonces and batch receipts, expired sessions, the item keys of
expired unseal releases, and query records and compliance flags past the audit window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, or_, select

from privplate.deployment import Deployment
from privplate.store.models import ReadCount
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
_read_counts: Table = ReadCount.__table__  # type: ignore[assignment]
# A batch receipt only spares a retrying edge a second parse; reads de-duplicate by id anyway.
BATCH_RECEIPTS = timedelta(days=7)


#: Deletes the rows of a table matching a condition and returns how many; the purge passes
#: one that batches on SQLite to keep each write lock short.
Remover = Callable[[Table, ColumnElement[bool]], int]


def purge_records(dep: Deployment, now: datetime, remove: Remover) -> dict[str, int]:
    s = dep.settings
    hit_cutoff = now - s.retention_window("hit_reads")
    audit_cutoff = now - s.retention_window("audit_entries")
    nonce_cutoff = now - 2 * timedelta(seconds=s.server.device_request_max_age_seconds)
    dead = or_(_entries.c.expires_at <= now, _entries.c.removed_at.is_not(None))
    counts: dict[str, int] = {}
    # Tokens before their entries (foreign key); a run stopped in between leaves entries
    # without tokens, which match nothing and go on the next run.
    dead_ids = select(_entries.c.id).where(dead)
    counts["hotlist_tokens"] = remove(_tokens, _tokens.c.entry_id.in_(dead_ids))
    counts["hotlist_entries"] = remove(_entries, dead)
    counts["alerts"] = remove(_alerts, _alerts.c.observed_at < hit_cutoff)
    counts["device_nonces"] = remove(_nonces, _nonces.c.seen_at < nonce_cutoff)
    counts["device_batches"] = remove(_batches, _batches.c.received_at < now - BATCH_RECEIPTS)
    counts["sessions"] = remove(_sessions, _sessions.c.expires_at <= now)
    counts["queries"] = remove(_queries, _queries.c.created_at < audit_cutoff)
    counts["compliance_flags"] = remove(_flags, _flags.c.created_at < audit_cutoff)
    # Totals for transparency reports cover the same span as the audit log they sit beside.
    counts["read_counts"] = remove(_read_counts, _read_counts.c.day < audit_cutoff.date())
    with dep.db.write() as conn:
        counts["unseal_release_keys"] = expire_release_keys(conn, now)
    return counts
