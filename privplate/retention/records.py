"""Retention of the server's own records: expired hotlist entries and their tokens, alerts
past the hit-read window, spent device nonces and batch receipts, expired sessions, the item keys of
expired unseal releases, and query records and compliance flags past the audit window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select

from privplate.retention.scope import RetentionScope
from privplate.store.models import Base, ReadCount
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

# A batch receipt only spares a retrying edge a second parse; reads de-duplicate by id anyway.
BATCH_RECEIPTS = timedelta(days=7)


#: Deletes the rows of a table matching a condition and returns how many; the purge passes
#: one that batches on SQLite to keep each write lock short.
Remover = Callable[[type[Base], ColumnElement[bool]], int]


def purge_records(scope: RetentionScope, now: datetime, remove: Remover) -> dict[str, int]:
    rules = scope.rules
    hit_cutoff = now - rules.window("hit_reads")
    audit_cutoff = now - rules.window("audit_entries")
    nonce_cutoff = now - rules.nonce_window
    dead = or_(HotlistEntry.expires_at <= now, HotlistEntry.removed_at.is_not(None))
    counts: dict[str, int] = {}
    # Tokens before their entries (foreign key); a run stopped in between leaves entries
    # without tokens, which match nothing and go on the next run.
    dead_ids = select(HotlistEntry.id).where(dead)
    counts["hotlist_tokens"] = remove(HotlistToken, HotlistToken.entry_id.in_(dead_ids))
    counts["hotlist_entries"] = remove(HotlistEntry, dead)
    counts["alerts"] = remove(Alert, Alert.observed_at < hit_cutoff)
    counts["device_nonces"] = remove(DeviceNonce, DeviceNonce.seen_at < nonce_cutoff)
    counts["device_batches"] = remove(DeviceBatch, DeviceBatch.received_at < now - BATCH_RECEIPTS)
    counts["sessions"] = remove(Session, Session.expires_at <= now)
    counts["queries"] = remove(Query, Query.created_at < audit_cutoff)
    counts["compliance_flags"] = remove(ComplianceFlag, ComplianceFlag.created_at < audit_cutoff)
    # Totals for transparency reports cover the same span as the audit log they sit beside.
    counts["read_counts"] = remove(ReadCount, ReadCount.day < audit_cutoff.date())
    with scope.db.write() as conn:
        counts["unseal_release_keys"] = expire_release_keys(conn, now)
    return counts
