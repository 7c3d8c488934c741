"""The public transparency report: what this deployment keeps, who may search, what happened.

Everything in it comes from the system itself, never from a form someone fills in: the policy
from the settings and the retention preset, the people and agencies with access from the
accounts and sharing agreements, and the activity of the period from the audit log (searches,
refusals, spot checks, alerts, unseals, holds, purges) and the per-camera read totals, for the
period and for each UTC day of it. It names the signed checkpoint (size and root) it was built
from and is published signed (transparency/signed.py), so anyone holding a later signed
checkpoint can check that the log the numbers came from was not rewritten. It never contains
a plate, a case number, a justification or a person's name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from statistics import median
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select

from privplate.alerts.outcomes import NOT_PANNED_OUT
from privplate.audit.cosigners import configured_witnesses
from privplate.audit.merkle import EMPTY_ROOT
from privplate.audit.signing import CHECKPOINT_FORMAT_NAMES
from privplate.identity.accounts import persons_of
from privplate.identity.roles import Role
from privplate.jurisdiction import get_preset
from privplate.policy.review import spot_check_counts
from privplate.policy.rules import PurposePolicy
from privplate.retention.scope import RetentionScope
from privplate.retention.status import retention_status
from privplate.settings import Settings
from privplate.store.approval_models import SearchApproval
from privplate.store.models import Camera, ReadCount
from privplate.store.server_models import (
    Device,
    Hotlist,
    HotlistEntry,
    SharingAgreement,
    User,
)
from privplate.store.unseal_models import ShareSet
from privplate.store.witness_models import AuditCosignature


class ReportScope(RetentionScope, Protocol):
    """What the report reads: the retention scope (database, keyring, audit log, windows) and
    the settings whose policy it publishes."""

    @property
    def settings(self) -> Settings: ...


REPORT_VERSION = 1
_REFUSALS = {"denied": "denied_by_policy", "refused": "over_quota"}
#: What privplate stores and what it does not; true of every deployment by construction.
STORED = (
    "a keyed token of each plate reading (HMAC under a key that is destroyed when its epoch "
    "expires), never the plate text",
    "the camera and the time of each reading",
    "a sealed image of each reading (plate crop and a downscaled frame) that opens only when "
    "compliance officers approve, under the two-person rule",
)
NOT_STORED = (
    "plate text",
    "vehicle make, model or colour",
    "faces or people",
    "any search other than 'was this plate seen', which needs a plate, a purpose and a case number",
)


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())


def _policy(dep: ReportScope) -> dict[str, Any]:
    s = dep.settings
    preset = get_preset(s.retention.preset)
    rules = PurposePolicy.from_settings(s)
    status = retention_status(dep)
    return {
        "preset": preset.name,
        "preset_title": preset.title,
        "preset_summary": preset.summary,
        "sources": list(preset.sources),
        "windows_seconds": {
            kind: _seconds(s.retention_window(kind))
            for kind in ("non_hit_reads", "hit_reads", "evidence", "hotlist_entries")
        },
        "audit_entries_kept_seconds": _seconds(s.retention_window("audit_entries")),
        "purge_interval_seconds": s.retention.purge_interval_seconds,
        "allowed_purposes": sorted(p.value for p in rules.allowed),
        "forbidden_purposes": sorted(p.value for p in rules.forbidden),
        "out_of_state_sharing": str(rules.out_of_state_sharing),
        "search_rules": {
            "plate_required": True,
            "case_number_required": True,
            "min_justification_chars": rules.min_justification_chars,
            "max_window_days": s.queries.max_window_days,
            "per_investigator_per_day": s.queries.per_user_per_day,
            "per_deployment_per_day": s.queries.per_deployment_per_day,
            # Purposes whose searches wait for a second person's approval before they run.
            "approval_required": sorted(p.value for p in s.queries.approval_required),
        },
        "retention_promises": [p.as_dict() for p in status.promises],
    }


def _access(dep: ReportScope, start: datetime, end: datetime) -> dict[str, Any]:
    with dep.db.read() as conn:
        users = conn.execute(
            select(User.role, User.agency, func.count())
            .where(User.disabled_at.is_(None))
            .group_by(User.role, User.agency)
        ).all()
        # People, not accounts: one person may hold several accounts (declared when the
        # administrator created the second one, which is audited).
        live_people = select(User.person).where(User.disabled_at.is_(None))
        people_by_role = conn.execute(
            select(User.role, func.count(func.distinct(User.person)))
            .where(User.disabled_at.is_(None))
            .group_by(User.role)
        ).all()
        people = conn.execute(
            select(func.count(func.distinct(User.person))).where(User.disabled_at.is_(None))
        ).scalar_one()
        several = conn.execute(
            select(func.count()).select_from(
                live_people.group_by(User.person).having(func.count() > 1).subquery()
            )
        ).scalar_one()
        agreements = conn.execute(
            select(SharingAgreement)
            .where(
                SharingAgreement.created_at < end,
                SharingAgreement.expires_at > start,
                or_(SharingAgreement.revoked_at.is_(None), SharingAgreement.revoked_at > start),
            )
            .order_by(SharingAgreement.agency)
        ).all()
        devices = conn.execute(
            select(func.count()).select_from(Device).where(Device.revoked_at.is_(None))
        ).scalar_one()
        unseal = conn.execute(
            select(ShareSet.threshold, ShareSet.officers).where(ShareSet.superseded_at.is_(None))
        ).all()
    by_role: Counter[str] = Counter()
    agencies: dict[str, Counter[str]] = {}
    for role, agency, n in users:
        by_role[role] += n
        if role in (Role.INVESTIGATOR, Role.COMPLIANCE, Role.ADMIN):
            agencies.setdefault(agency or "(this deployment)", Counter())[role] += n
    return {
        "accounts_by_role": dict(sorted(by_role.items())),
        "people_by_role": {str(role): int(n) for role, n in sorted(people_by_role)},
        "people_with_accounts": int(people),
        "people_with_more_than_one_account": int(several),
        # Every agency whose people can search, approve unseals or administer: from the
        # accounts themselves, so no agency with access can be left off.
        "agencies_with_accounts": [
            {"agency": name, "accounts_by_role": dict(sorted(roles.items()))}
            for name, roles in sorted(agencies.items())
        ],
        "sharing_agreements": [
            {
                "agency": a.agency,
                "out_of_state": a.out_of_state,
                "declaration_signed": a.declaration_signed,
                "created_at": a.created_at.isoformat(),
                "expires_at": a.expires_at.isoformat(),
                "revoked": a.revoked_at is not None and a.revoked_at < end,
            }
            for a in agreements
        ],
        "edge_devices": int(devices),
        "unseal_rule": [
            {"approvals_needed": int(t), "officers": int(n)} for t, n in sorted(set(unseal))
        ],
    }


def _reads(dep: ReportScope, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    with dep.db.read() as conn:
        per_camera = conn.execute(
            select(ReadCount.camera_id, func.sum(ReadCount.reads), func.sum(ReadCount.hits))
            .where(ReadCount.day >= first, ReadCount.day <= last)
            .group_by(ReadCount.camera_id)
        ).all()
        per_day = conn.execute(
            select(ReadCount.day, ReadCount.camera_id, ReadCount.reads).where(
                ReadCount.day >= first, ReadCount.day <= last
            )
        ).all()
        cameras = conn.execute(
            select(func.count()).select_from(Camera).where(Camera.active.is_(True))
        ).scalar_one()
        # Live entries only, in the join condition so that a list with none still shows.
        live = and_(
            HotlistEntry.hotlist_id == Hotlist.id,
            HotlistEntry.removed_at.is_(None),
            HotlistEntry.expires_at > now,
        )
        lists = conn.execute(
            select(Hotlist.name, Hotlist.source, func.count(HotlistEntry.id))
            .select_from(Hotlist)
            .outerjoin(HotlistEntry, live)
            .group_by(Hotlist.id, Hotlist.name, Hotlist.source)
            .order_by(Hotlist.name)
        ).all()
    return {
        "active_cameras": int(cameras),
        "reads_stored": sum(int(r[1] or 0) for r in per_camera),
        "hit_reads_stored": sum(int(r[2] or 0) for r in per_camera),
        "per_camera": {str(r[0]): {"reads": int(r[1] or 0)} for r in sorted(per_camera)},
        "per_camera_per_day": _per_day(per_day, first, last),
        "hotlists": [
            {"name": name, "source": source, "entries_now": int(n)} for name, source, n in lists
        ],
    }


def _per_day(
    rows: Iterable[tuple[date, str, int]], first: date, last: date
) -> list[dict[str, Any]]:
    """Readings per camera and UTC day, every day of the period for every camera that read in
    it: a day with none is a 0, so an outage shows instead of a gap. Ordered by day, then
    camera; each camera's days add up to its ``per_camera`` total."""
    counts = {(day, str(camera)): int(n or 0) for day, camera, n in rows}
    cameras = sorted({camera for _, camera in counts})
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [
        {"day": day.isoformat(), "camera_id": camera, "reads": counts.get((day, camera), 0)}
        for day in days
        for camera in cameras
    ]


def _people(dep: ReportScope, actors: set[str]) -> int:
    """How many people stand behind these audit actors: two accounts of one person count once."""
    names = [a.removeprefix("user:") for a in actors]
    with dep.db.read() as conn:
        person_of = persons_of(conn, names)
    return len({person_of.get(n, n) for n in names})


def _median_decision(dep: ReportScope, start: datetime, end: datetime) -> int | None:
    """Median seconds from filing to an officer's decision, of the searches held for approval
    that were decided in the period (None: none was)."""
    with dep.db.read() as conn:
        rows = conn.execute(
            select(SearchApproval.created_at, SearchApproval.decided_at).where(
                SearchApproval.decided_at >= start, SearchApproval.decided_at < end
            )
        ).all()
    waits = [(done - created).total_seconds() for created, done in rows if done is not None]
    return int(median(waits)) if waits else None


def _activity(dep: ReportScope, start: datetime, end: datetime) -> dict[str, Any]:
    """One pass over the audit entries of the period."""
    actions: Counter[str] = Counter()
    purposes: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    agreements: Counter[str] = Counter()
    alerts_by_list: Counter[str] = Counter()
    alerts_by_camera: Counter[str] = Counter()
    searchers: set[str] = set()
    outcomes: dict[int, str] = {}  # alert -> its latest outcome reported in the period
    answered_with_matches = via_alternate = pruned = holds_expired = device_refusals = 0
    purge = Counter[str]()
    for stored in dep.audit.entries(since=start, until=end):
        actions[stored.action] += 1
        if stored.entry is None:
            pruned += 1
            continue
        d = stored.entry.details
        if stored.action.startswith("queries."):
            outcome = stored.action.removeprefix("queries.")
            purposes[f"{d.get('purpose')}"] += 1
            searchers.add(stored.actor)
            if outcome == "answered":
                agreements[str(d.get("agreement") or "")] += 1
                answered_with_matches += int(d.get("matches", 0) or 0) > 0
            else:
                refusals[_REFUSALS.get(outcome, outcome)] += 1
        elif stored.action == "alerts.raised":
            alerts_by_list[str(d.get("hotlist"))] += 1
            alerts_by_camera[str(d.get("camera"))] += 1
            via_alternate += bool(d.get("via_alternate"))
        elif stored.action == "alerts.outcome":
            outcomes[int(d["alert"])] = str(d["outcome"])
        elif stored.action == "devices.request_refused":  # one entry may stand for many
            device_refusals += 1 + int(d.get("similar_refusals_not_recorded", 0))
            if d.get("flushed_at_shutdown"):
                device_refusals -= 1  # a flush entry is only the count
        elif stored.action == "hold.expired":  # one entry per purge, listing its holds
            holds_expired += len(d.get("holds", []))
        elif stored.action == "retention.purged":
            purge["runs"] += 1
            per_epoch = d.get("reads_deleted_per_epoch", {})
            purge["reads_deleted"] += sum(int(v) for v in per_epoch.values())
            purge["evidence_deleted"] += int(d.get("evidence_deleted", 0))
            purge["epoch_keys_destroyed"] += len(d.get("epochs_destroyed", []))
    with dep.db.read() as conn:
        rows = conn.execute(select(SharingAgreement.id, SharingAgreement.agency))
        agency_of = {str(a.id): a.agency for a in rows}
    by_agency: Counter[str] = Counter()
    for agreement, n in agreements.items():
        name = agency_of.get(agreement, "(another agency)") if agreement else "(this deployment)"
        by_agency[name] += n
    searches = sum(purposes.values())
    return {
        "searches": {
            "total": searches,
            "answered": searches - sum(refusals.values()),
            "answered_with_a_match": answered_with_matches,
            "refused": dict(sorted(refusals.items())),
            "by_purpose": dict(sorted(purposes.items())),
            "answered_by_agency": dict(sorted(by_agency.items())),
            "people_who_searched": _people(dep, searchers),
        },
        "alerts": {
            "total": actions["alerts.raised"],
            "via_an_alternate_reading": via_alternate,
            "by_hotlist": dict(sorted(alerts_by_list.items())),
            "by_camera": dict(sorted(alerts_by_camera.items())),
            # Reported in the period by the people who acted on an alert, latest per alert.
            "outcomes_reported": dict(sorted(Counter(outcomes.values()).items())),
            "did_not_pan_out": sum(1 for o in outcomes.values() if o in NOT_PANNED_OUT),
        },
        "unseal": {
            "requested": actions["unseal.requested"],
            "released": actions["unseal.released"],
            "denied": actions["unseal.denied"],
            "refused": actions["unseal.refused"],
            "withdrawn": actions["unseal.withdrawn"],
        },
        "search_approvals": {
            "requested": actions["search_approvals.requested"],
            "approved": actions["search_approvals.approved"],
            "denied": actions["search_approvals.denied"],
            "expired": actions["search_approvals.expired"],
            "run": actions["search_approvals.run"],
            "median_seconds_to_decision": _median_decision(dep, start, end),
        },
        "legal_holds": {
            "requested": actions["hold.requested"],
            "approved": actions["hold.approved"],
            "released": actions["hold.released"],
            "expired": holds_expired,
        },
        "retention": {
            "purge_runs": purge["runs"],
            "reads_deleted": purge["reads_deleted"],
            "evidence_deleted": purge["evidence_deleted"],
            "epoch_keys_destroyed": purge["epoch_keys_destroyed"],
        },
        "oversight": {
            "refused_accesses": actions["access.denied"],
            "refused_device_requests": device_refusals,
            "hotlist_plates_revealed": actions["hotlists.entries_viewed"],
            "config_changes": actions["config.changed"],
            # Accounts an administrator added to a person who already had one.
            "second_accounts_created": actions["users.second_account"],
        },
        "audit_entries_in_period": sum(actions.values()),
        "audit_entries_pruned_in_period": pruned,
    }


def build_report(
    dep: ReportScope, *, start: datetime, end: datetime, now: datetime | None = None
) -> dict[str, Any]:
    """The report for [start, end) as a JSON-ready dict (see module docstring)."""
    now = now or datetime.now(UTC)
    # The report names a signed checkpoint, not a live tree read: signed now if the log grew
    # since the latest (the one rule, AuditLog.sign_if_grown), so anyone can check the numbers
    # came from a log that was not rewritten since (transparency/signed.py).
    latest = dep.audit.sign_if_grown() or dep.audit.note_checkpoint()
    return {
        "privplate_transparency_report": REPORT_VERSION,
        "generated_at": now.isoformat(),
        "period": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "days": round((end - start).total_seconds() / 86_400, 2),
        },
        "stored": list(STORED),
        "not_stored": list(NOT_STORED),
        "policy": _policy(dep),
        "access": _access(dep, start, end),
        "reads": _reads(dep, start, end, now),
        **_activity(dep, start, end),
        "spot_checks": spot_check_counts(dep.audit, start=start, end=end, now=now),
        "audit_log": {
            "origin": dep.audit.signer.origin,
            "tree_size": 0 if latest is None else latest.tree_size,
            "root": (EMPTY_ROOT if latest is None else latest.root).hex(),
            # The checkpoint the report was built from.
            "latest_checkpoint": None
            if latest is None
            else {
                "tree_size": latest.tree_size,
                "root": latest.root.hex(),
                # Stored checkpoints always carry their signing time.
                "time": latest.time.isoformat() if latest.time else None,
                "public_key": latest.public_key.hex(),
                # Which signed text: a C2SP note (at /.well-known/privplate/checkpoint), or
                # the v1 body of checkpoints signed before notes.
                "format": CHECKPOINT_FORMAT_NAMES[latest.format],
            },
            "witnesses": _witnesses(dep),
        },
    }


def _witnesses(dep: ReportScope) -> list[dict[str, Any]]:
    """Who watches the log: each witness that ever cosigned it, with the largest size it
    cosigned and when, and whether the deployment still lists it (audit.witnesses). The
    signatures themselves are checked by `privplate audit verify`; the report says who."""
    listed = configured_witnesses(dep.settings.audit.witnesses)
    configured = {(v.name, v.public_key) for v in listed}
    with dep.db.read() as conn:
        rows = conn.execute(
            select(
                AuditCosignature.witness,
                AuditCosignature.witness_key,
                func.max(AuditCosignature.tree_size),
                func.max(AuditCosignature.timestamp),
            ).group_by(AuditCosignature.witness, AuditCosignature.witness_key)
        ).all()
    out = []
    for name, key, size, stamp in sorted(rows, key=lambda r: r[0]):
        out.append(
            {
                "name": name,
                "largest_size_cosigned": int(size),
                "latest_cosignature": datetime.fromtimestamp(int(stamp), UTC).isoformat(),
                "configured": (name, bytes(key)) in configured,
            }
        )
    return out


def period_ending(last: date, days: int) -> tuple[datetime, datetime]:
    """The ``days`` whole days (UTC) ending with ``last``, inclusive: [midnight starting day
    last - days + 1, midnight after ``last``). Whole days, because readings are counted per
    day; searches and the rest use the same bounds. ``last`` = today gives a period whose last
    day is still going on."""
    stop = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    return stop - timedelta(days=days), stop
