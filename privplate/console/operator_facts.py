"""What the operator's dashboard and alerts page show: cameras and devices with their last
contact (privplate.activity, which the MQTT publisher shares), today's reads and alerts, the
latest alerts. Counts and times only, never a plate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import func, select

from privplate.activity import CameraRow, DeviceRow, cameras, devices
from privplate.alerts import AlertInfo, alerts_after, latest_alert_id
from privplate.store.database import Database
from privplate.store.models import ReadCount
from privplate.store.server_models import Alert

__all__ = ["CameraRow", "DeviceRow", "Today", "cameras", "devices", "recent_alerts", "today"]

RECENT_ALERTS = 100


@dataclass(frozen=True)
class Today:
    reads: int
    alerts: int


def _midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date(), time(), UTC)


def today(db: Database, now: datetime | None = None) -> Today:
    start = _midnight(now or datetime.now(UTC))
    with db.read() as conn:
        reads = conn.execute(
            select(func.coalesce(func.sum(ReadCount.reads), 0)).where(ReadCount.day == start.date())
        ).scalar_one()
        alerts = conn.execute(
            select(func.count()).select_from(Alert).where(Alert.created_at >= start)
        ).scalar_one()
    return Today(reads=int(reads), alerts=int(alerts))


def recent_alerts(db: Database, limit: int = RECENT_ALERTS) -> tuple[list[AlertInfo], int]:
    """The latest alerts, newest first, and the id the live stream continues after. Alert ids
    only grow, so the last ``limit`` ids hold the latest alerts (fewer if some were purged)."""
    latest = latest_alert_id(db=db)
    found = alerts_after(db=db, after_id=max(latest - limit, 0), limit=limit)
    return list(reversed(found)), latest
