"""What the operator's dashboard and alerts page show: cameras and devices with their last
contact (privplate.activity, which the MQTT publisher shares), today's reads, hotlist alerts and
camera problems (device alerts: privplate.alerts.device_alerts), the latest alerts. Counts and
times only, never a plate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

from sqlalchemy import func, select

from privplate.activity import CameraRow, DeviceRow, cameras, devices
from privplate.alerts import AlertInfo, alerts_after, latest_alert_id
from privplate.store.database import Database
from privplate.store.health_models import HealthEpisode
from privplate.store.models import ReadCount
from privplate.store.server_models import Alert, AlertKind

__all__ = ["CameraRow", "DeviceRow", "Today", "cameras", "devices", "recent_alerts", "today"]

RECENT_ALERTS = 100


@dataclass(frozen=True)
class Today:
    reads: int
    #: Reads that matched a hotlist entry.
    hotlist_alerts: int
    #: Device alerts raised today (a silent camera, a spool backlog; a row that clears one is
    #: no problem), and those of any day whose condition still holds.
    camera_problems: int
    camera_problems_open: int


def _midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date(), time(), UTC)


def today(db: Database, now: datetime | None = None) -> Today:
    start = _midnight(now or datetime.now(UTC))
    with db.read() as conn:
        reads = conn.execute(
            select(func.coalesce(func.sum(ReadCount.reads), 0)).where(ReadCount.day == start.date())
        ).scalar_one()
        hits = conn.execute(
            select(func.count())
            .select_from(Alert)
            .where(Alert.created_at >= start, Alert.kind == AlertKind.HOTLIST_HIT.value)
        ).scalar_one()
        raised = (Alert.kind != AlertKind.HOTLIST_HIT.value, Alert.clears.is_(None))
        problems = conn.execute(
            select(func.count()).select_from(Alert).where(Alert.created_at >= start, *raised)
        ).scalar_one()
        # An open episode is one row, kept while its condition holds (device_alerts).
        still_on = conn.execute(select(func.count()).select_from(HealthEpisode)).scalar_one()
    return Today(
        reads=int(reads),
        hotlist_alerts=int(hits),
        camera_problems=int(problems),
        camera_problems_open=int(still_on),
    )


def recent_alerts(db: Database, limit: int = RECENT_ALERTS) -> tuple[list[AlertInfo], int]:
    """The latest alerts, newest first, and the id the live stream continues after. Alert ids
    only grow, so the last ``limit`` ids hold the latest alerts (fewer if some were purged)."""
    latest = latest_alert_id(db=db)
    found = alerts_after(db=db, after_id=max(latest - limit, 0), limit=limit)
    return list(reversed(found)), latest
