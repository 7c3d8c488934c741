"""Retention of the server's own records: expired hotlist entries and their tokens, alerts past
the hit-read window, spent device nonces and batch receipts, the health reports of revoked (or
removed) devices, expired sessions, spent enrolment codes, the item keys of expired unseal
releases, the sealed plates of expired searches awaiting approval, and query records, searches
filed for approval, compliance flags and reviewed spot checks past the audit window (an open
spot check keeps what its reviewer reads of a subject deleted before it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select

from privplate.policy.approvals import expire_search_approvals
from privplate.policy.review import SubjectKind, keep_subjects
from privplate.retention.scope import RetentionScope
from privplate.store.approval_models import OPEN_STATUSES, SearchApproval
from privplate.store.enrolment_models import EnrolmentCode
from privplate.store.health_models import CameraHealth, DeviceHealth
from privplate.store.models import Base, ReadCount
from privplate.store.outbox_models import WebhookDelivery
from privplate.store.pending_import_models import PendingImport
from privplate.store.review_models import SpotCheck
from privplate.store.server_models import (
    Alert,
    ComplianceFlag,
    Device,
    DeviceBatch,
    DeviceNonce,
    HotlistEntry,
    HotlistToken,
    Query,
    Session,
)
from privplate.unseal.workflow import expire_release_keys

# An expired or used enrolment code is kept a week, so a late try hears "expired" or "used"
# rather than "unknown"; the audit log keeps its story (by code id) for its own window.
ENROLMENT_CODES = timedelta(days=7)
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
    old_queries = Query.created_at < audit_cutoff
    # What a reviewer reads of a drawn entry or search outlives the record until the verdict.
    with scope.db.write() as conn:
        keep_subjects(conn, kind=SubjectKind.HOTLIST_ENTRY, doomed=dead_ids)
        keep_subjects(conn, kind=SubjectKind.SEARCH, doomed=select(Query.id).where(old_queries))
    counts["hotlist_tokens"] = remove(HotlistToken, HotlistToken.entry_id.in_(dead_ids))
    counts["hotlist_entries"] = remove(HotlistEntry, dead)
    # The outbox rows first (the foreign key cascades too; this counts them).
    old_alerts = select(Alert.id).where(Alert.observed_at < hit_cutoff)
    counts["webhook_deliveries"] = remove(WebhookDelivery, WebhookDelivery.alert_id.in_(old_alerts))
    counts["alerts"] = remove(Alert, Alert.observed_at < hit_cutoff)
    counts["device_nonces"] = remove(DeviceNonce, DeviceNonce.seen_at < nonce_cutoff)
    counts["device_batches"] = remove(DeviceBatch, DeviceBatch.received_at < now - BATCH_RECEIPTS)
    # A revoked device's last report watches nothing (the health check ignores it and clears
    # its open alerts) and would stay in /metrics for ever; its episodes go with that check.
    live = select(Device.id).where(Device.revoked_at.is_(None))
    counts["camera_health"] = remove(CameraHealth, CameraHealth.device_id.not_in(live))
    counts["device_health"] = remove(DeviceHealth, DeviceHealth.device_id.not_in(live))
    counts["sessions"] = remove(Session, Session.expires_at <= now)
    # Console imports never confirmed (encrypted; the console deletes them on use too).
    counts["pending_imports"] = remove(PendingImport, PendingImport.expires_at <= now)
    counts["enrolment_codes"] = remove(
        EnrolmentCode, EnrolmentCode.expires_at < now - ENROLMENT_CODES
    )
    counts["queries"] = remove(Query, old_queries)
    # Searches filed for approval: an expired one loses its sealed plate now (the service also
    # expires on every call); the ended rows go with the query records they sit beside.
    with scope.db.write() as conn:
        counts["search_approval_plates"] = expire_search_approvals(conn, scope.audit, now)
    counts["search_approvals"] = remove(
        SearchApproval,
        and_(SearchApproval.created_at < audit_cutoff, SearchApproval.status.not_in(OPEN_STATUSES)),
    )
    counts["compliance_flags"] = remove(ComplianceFlag, ComplianceFlag.created_at < audit_cutoff)
    # An open spot check stays until its verdict (the queue shows how long it has waited).
    counts["spot_checks"] = remove(SpotCheck, SpotCheck.reviewed_at < audit_cutoff)
    # Totals for transparency reports cover the same span as the audit log they sit beside.
    counts["read_counts"] = remove(ReadCount, ReadCount.day < audit_cutoff.date())
    with scope.db.write() as conn:
        counts["unseal_release_keys"] = expire_release_keys(conn, now)
    return counts
