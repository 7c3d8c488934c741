"""What came of an alert, as the people who acted on it report it.

Arkansas asks for confirmed matches and matches that did not pan out, New Hampshire for
matches that led to stops, both for arrests. Only a closed set of outcomes can be recorded,
with no free text, so nothing said about the vehicle or its driver lands here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select, update

from privplate.audit import AuditLog
from privplate.errors import NotFound
from privplate.store.database import Database
from privplate.store.server_models import Alert, AlertKind, Hotlist


class AlertOutcome(StrEnum):
    CONFIRMED = "confirmed"  # the vehicle is the one on the list
    STOP = "stop"  # confirmed, and it led to a stop
    ARREST = "arrest"  # confirmed, and it led to an arrest
    MISREAD = "misread"  # the plate was read wrongly: not the listed plate
    ENTRY_NOT_VALID = "entry-not-valid"  # read right, but the list entry was out of date
    NOT_LOCATED = "not-located"  # nobody found the vehicle


#: Outcomes where the alert did not pan out (Arkansas' "matches that did not pan out").
NOT_PANNED_OUT = frozenset({AlertOutcome.MISREAD, AlertOutcome.ENTRY_NOT_VALID})


def record_outcome(
    *,
    db: Database,
    audit: AuditLog,
    actor: str,
    alert_id: int,
    outcome: AlertOutcome,
    now: datetime | None = None,
) -> None:
    """Set (or correct) an alert's outcome; every change is audited."""
    now = now or datetime.now(UTC)
    with db.write() as conn:
        row = conn.execute(
            select(Alert.camera_id, Alert.outcome, Hotlist.name)
            .outerjoin(Hotlist, Hotlist.id == Alert.hotlist_id)
            .where(Alert.id == alert_id, Alert.kind == AlertKind.HOTLIST_HIT.value)
        ).one_or_none()
        if row is None:
            # Device alerts (a silent camera) have no outcome: they are not hotlist hits.
            raise NotFound("no hotlist alert with this id (or retention has removed it)")
        conn.execute(
            update(Alert)
            .where(Alert.id == alert_id)
            .values(outcome=outcome.value, outcome_by=actor, outcome_at=now)
        )
        audit.append(
            conn,
            actor=actor,
            action="alerts.outcome",
            details={
                "alert": alert_id,
                "outcome": outcome.value,
                "previous": row.outcome,
                "camera": row.camera_id,
                "hotlist": row.name or "(removed)",
            },
        )
