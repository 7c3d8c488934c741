"""Alerts: a read whose token matched a live hotlist entry, recorded in the ingest
transaction and then pushed to consoles (SSE), webhooks and the audit log; and device alerts
(a silent camera, a spool backlog: privplate.alerts.device_alerts), recorded and pushed the
same way, so every channel that carries hotlist alerts carries them too."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, insert, select, update

from privplate.alerts.kinds import describe
from privplate.alerts.notify import announce_alerts
from privplate.alerts.outbox import enqueue_deliveries
from privplate.audit import AuditLog
from privplate.hotlists.tokens import Hit
from privplate.store.database import Database
from privplate.store.ingest import ReadIn
from privplate.store.server_models import Alert, AlertKind, Hotlist, HotlistEntry


@dataclass(frozen=True)
class AlertInfo:
    """What a console or webhook receives. It names the hotlist entry, never a plate.

    A device alert (``kind`` silent_camera or spool_backlog) has no read or entry (None), an
    empty hotlist and case number, ``reason`` saying what is wrong, and names its device and
    cause; the row that ends its episode has ``clears`` (the raising alert's id)."""

    id: int
    read_id: uuid.UUID | None
    observed_at: datetime
    camera_id: str
    hotlist: str
    entry_id: uuid.UUID | None
    reason: str
    case_number: str
    via_alternate: bool
    confidence: float
    evidence_id: uuid.UUID | None
    created_at: datetime
    #: What came of it (privplate.alerts.outcomes.AlertOutcome), once someone reported it.
    outcome: str | None = None
    kind: str = AlertKind.HOTLIST_HIT.value
    device_id: str | None = None
    cause: str | None = None
    clears: int | None = None
    cleared_at: datetime | None = None

    def payload(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("read_id", "entry_id", "evidence_id"):
            out[name] = str(out[name]) if out[name] is not None else None
        for name in ("observed_at", "created_at", "cleared_at"):
            out[name] = out[name].isoformat() if out[name] is not None else None
        return out


@dataclass(frozen=True)
class DeviceAlertIn:
    """A device alert to record: raised (``clears`` None) or ending the episode of the
    alert ``clears``."""

    kind: AlertKind
    camera_id: str
    device_id: str
    cause: str
    clears: int | None = None


def record_alerts(
    conn: Connection,
    *,
    audit: AuditLog,
    actor: str,
    hits: Sequence[Hit],
    reads: Mapping[uuid.UUID, ReadIn],
    now: datetime | None = None,
) -> list[AlertInfo]:
    """Insert one alert per (read, entry) hit, inside the ingest transaction."""
    now = now or datetime.now(UTC)
    out: list[AlertInfo] = []
    for hit in hits:
        read = reads[hit.read_id]
        row = {
            "kind": AlertKind.HOTLIST_HIT.value,
            "read_id": hit.read_id,
            "observed_at": read.observed_at,
            "camera_id": read.camera_id,
            "hotlist_id": hit.hotlist_id,
            "entry_id": hit.entry_id,
            "via_alternate": hit.via_alternate,
            "confidence": float(read.confidence),
            "evidence_id": read.evidence_id,
            "created_at": now,
        }
        alert_id = conn.execute(insert(Alert).values(**row).returning(Alert.id)).scalar_one()
        info = AlertInfo(
            id=int(alert_id),
            read_id=hit.read_id,
            observed_at=read.observed_at,
            camera_id=read.camera_id,
            hotlist=hit.hotlist,
            entry_id=hit.entry_id,
            reason=hit.reason,
            case_number=hit.case_number,
            via_alternate=hit.via_alternate,
            confidence=float(read.confidence),
            evidence_id=read.evidence_id,
            created_at=now,
        )
        audit.append(
            conn,
            actor=actor,
            action="alerts.raised",
            details={
                "alert": info.id,
                "hotlist": hit.hotlist,
                "entry": str(hit.entry_id),
                "camera": read.camera_id,
                "read": str(hit.read_id),
                "via_alternate": hit.via_alternate,
            },
        )
        out.append(info)
    _announce(conn, out, now)
    return out


def _announce(conn: Connection, alerts: Sequence[AlertInfo], now: datetime) -> None:
    # The webhook outbox's rows commit (or roll back) with the alerts they deliver.
    enqueue_deliveries(conn, [a.id for a in alerts], now)
    # PostgreSQL: every server process's streams are woken at commit (the id only).
    announce_alerts(conn, max((a.id for a in alerts), default=0))


def record_device_alerts(
    conn: Connection,
    *,
    audit: AuditLog,
    actor: str,
    alerts: Sequence[DeviceAlertIn],
    now: datetime | None = None,
) -> list[AlertInfo]:
    """Insert device alerts (and the rows clearing them) in the caller's transaction, with
    their outbox rows and notification, as :func:`record_alerts` does for hotlist hits.
    Audited as ``health.alert`` / ``health.cleared``, never as ``alerts.raised``: the
    transparency report counts hotlist hits only."""
    now = now or datetime.now(UTC)
    out: list[AlertInfo] = []
    for alert in alerts:
        row = {
            "kind": alert.kind.value,
            "observed_at": now,
            "camera_id": alert.camera_id,
            "device_id": alert.device_id,
            "cause": alert.cause,
            "clears": alert.clears,
            "created_at": now,
        }
        alert_id = int(conn.execute(insert(Alert).values(**row).returning(Alert.id)).scalar_one())
        if alert.clears is not None:
            conn.execute(update(Alert).where(Alert.id == alert.clears).values(cleared_at=now))
        clearing = alert.clears is not None
        out.append(
            AlertInfo(
                id=alert_id,
                read_id=None,
                observed_at=now,
                camera_id=alert.camera_id,
                hotlist="",
                entry_id=None,
                reason=describe(alert.kind, alert.cause, clearing=clearing),
                case_number="",
                via_alternate=False,
                confidence=0.0,
                evidence_id=None,
                created_at=now,
                kind=alert.kind.value,
                device_id=alert.device_id,
                cause=alert.cause,
                clears=alert.clears,
            )
        )
        audit.append(
            conn,
            actor=actor,
            action="health.cleared" if clearing else "health.alert",
            details={
                "alert": alert_id,
                "kind": alert.kind.value,
                "camera": alert.camera_id,
                "device": alert.device_id,
                "cause": alert.cause,
                **({"clears": alert.clears} if clearing else {}),
            },
        )
    _announce(conn, out, now)
    return out


def _alerts(*where: ColumnElement[bool]) -> Select[Alert, str, str, str]:
    return (
        select(
            Alert,
            Hotlist.name.label("hotlist"),
            HotlistEntry.reason,
            HotlistEntry.case_number,
        )
        # Outer joins: an alert outlives its hotlist entry once retention removed the entry.
        .outerjoin(HotlistEntry, HotlistEntry.id == Alert.entry_id)
        .outerjoin(Hotlist, Hotlist.id == Alert.hotlist_id)
        .where(*where)
        .order_by(Alert.id)
    )


def alerts_after(
    *, db: Database, after_id: int, limit: int = 200, skip: Collection[int] = ()
) -> list[AlertInfo]:
    """Alerts with an id above ``after_id``, oldest first, leaving out the ids in ``skip``
    (those a stream already sent above its floor: see privplate.alerts.stream.Cursor)."""
    where = [Alert.id > after_id]
    if skip:
        where.append(Alert.id.not_in(list(skip)))
    with db.read() as conn:
        rows = conn.execute(_alerts(*where).limit(limit)).all()
    return _infos(rows)


def alerts_by_id(*, db: Database, ids: Sequence[int]) -> dict[int, AlertInfo]:
    """These alerts as they stand now (a purged one is missing), for webhook bodies."""
    if not ids:
        return {}
    with db.read() as conn:
        rows = conn.execute(_alerts(Alert.id.in_(ids))).all()
    return {a.id: a for a in _infos(rows)}


def _infos(rows: Sequence[Row[Alert, str, str, str]]) -> list[AlertInfo]:
    return [_info(r) for r in rows]


def _info(r: Row[Alert, str, str, str]) -> AlertInfo:
    if r.kind != AlertKind.HOTLIST_HIT.value:
        return AlertInfo(
            id=int(r.id),
            read_id=None,
            observed_at=r.observed_at,
            camera_id=r.camera_id,
            hotlist="",
            entry_id=None,
            reason=describe(r.kind, r.cause, clearing=r.clears is not None),
            case_number="",
            via_alternate=False,
            confidence=0.0,
            evidence_id=None,
            created_at=r.created_at,
            kind=r.kind,
            device_id=r.device_id,
            cause=r.cause,
            clears=None if r.clears is None else int(r.clears),
            cleared_at=r.cleared_at,
        )
    return AlertInfo(
        id=int(r.id),
        read_id=r.read_id,
        observed_at=r.observed_at,
        camera_id=r.camera_id,
        hotlist=r.hotlist or "(removed)",
        entry_id=r.entry_id,
        reason=r.reason or "(entry expired)",
        case_number=r.case_number or "",
        via_alternate=bool(r.via_alternate),
        confidence=float(r.confidence or 0.0),
        evidence_id=r.evidence_id,
        created_at=r.created_at,
        outcome=r.outcome,
    )


def latest_alert_id(*, db: Database) -> int:
    with db.read() as conn:
        value = conn.execute(select(Alert.id).order_by(Alert.id.desc()).limit(1)).scalar()
    return int(value or 0)
