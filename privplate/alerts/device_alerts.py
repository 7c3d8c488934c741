"""Device alerts from the edges' health reports: a silent camera, a spool backlog.

The deployment's leader checks the latest reports every ``health.check_interval_seconds``
(privplate.api.app). A reported camera is **silent** when

- its device's last report is older than ``health.silent_after_minutes`` (every camera of a
  device whose reports stopped is silent), or
- its last frame is older than that (a camera with no frame yet counts from the first report
  that named it), or
- within ``health.daytime_hours`` (local time in ``health.time_zone``), it made no read for
  ``health.no_read_after_minutes``; the time counts from the later of its last read and the
  start of the day's hours, so a quiet night raises nothing at dawn.

A device's spool is **backed up** when it holds more than ``health.spool_backlog_reads`` reads
or its oldest read waited longer than ``health.spool_backlog_minutes``.

Each condition raises exactly one alert per episode: the open episode is a row of
``health_episodes`` (one per kind and subject, so two leaders overlapping at a hand-over
cannot raise it twice: the second insert fails and its transaction rolls back). It clears when
the condition ends (frames arrive again; for a "no read" episode, a read after it opened): a
second alert row of the same kind with ``clears`` set, announced on every channel too. Only
devices that sent a report are watched, and only their active cameras; a revoked device's or
deactivated camera's open episode is cleared.

The open episodes are also what a camera's state is (:func:`camera_problems`): Home
Assistant's "camera silent" and "spool backlog" sensors show them (privplate.mqtt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, insert, select

from privplate.alerts.kinds import Cause
from privplate.alerts.records import AlertInfo, DeviceAlertIn, record_device_alerts
from privplate.audit import AuditLog
from privplate.devices.health import CameraState, DeviceState, latest
from privplate.settings import HealthSettings
from privplate.store.database import Database
from privplate.store.health_models import CameraHealth, HealthEpisode
from privplate.store.models import Camera
from privplate.store.server_models import Alert, AlertKind, Device

ACTOR = "health-check"
_ALL_DAY = (0, 24 * 60)


@dataclass(frozen=True)
class Episode:
    kind: AlertKind
    subject: str
    alert_id: int
    opened_at: datetime
    cause: Cause


@dataclass(frozen=True)
class Finding:
    """A condition that holds now."""

    kind: AlertKind
    subject: str
    camera_id: str
    device_id: str
    cause: Cause


def camera_problems(conn: Connection) -> dict[str, dict[AlertKind, Episode]]:
    """The open device alerts by camera: a silent camera's own, and a spool backlog on every
    camera its device last reported."""
    episodes = [
        Episode(AlertKind(r.kind), r.subject, int(r.alert_id), r.opened_at, Cause(r.cause))
        for r in conn.execute(select(HealthEpisode).order_by(HealthEpisode.subject))
    ]
    backlogged = [e.subject for e in episodes if e.kind is AlertKind.SPOOL_BACKLOG]
    cameras_of: dict[str, list[str]] = {}
    if backlogged:
        for device_id, camera_id in conn.execute(
            select(CameraHealth.device_id, CameraHealth.camera_id).where(
                CameraHealth.device_id.in_(backlogged)
            )
        ):
            cameras_of.setdefault(device_id, []).append(camera_id)
    out: dict[str, dict[AlertKind, Episode]] = {}
    for episode in episodes:
        if episode.kind is AlertKind.SILENT_CAMERA:
            out.setdefault(episode.subject, {})[episode.kind] = episode
        else:
            for camera_id in cameras_of.get(episode.subject, []):
                out.setdefault(camera_id, {})[episode.kind] = episode
    return out


def daytime(settings: HealthSettings, now: datetime) -> tuple[bool, datetime | None]:
    """Whether ``now`` falls within the daytime hours, and when the current stretch of them
    began (None: all day, no start)."""
    start, end = settings.daytime()
    if (start, end) == _ALL_DAY:
        return True, None
    local = now.astimezone(ZoneInfo(settings.time_zone))
    minute = local.hour * 60 + local.minute
    if start < end:
        inside = start <= minute < end
        day = local.date()
    else:  # wraps past midnight, e.g. 22:00-06:00
        inside = minute >= start or minute < end
        day = local.date() if minute >= start else local.date() - timedelta(days=1)
    if not inside:
        return False, None
    began = datetime.combine(day, time(start // 60, start % 60), tzinfo=local.tzinfo)
    return True, began.astimezone(UTC)


def silent_cause(
    camera: CameraState,
    device: DeviceState,
    settings: HealthSettings,
    now: datetime,
    open_episode: Episode | None = None,
) -> Cause | None:
    """Why ``camera`` is silent now, or None."""
    silent_after = timedelta(minutes=settings.silent_after_minutes)
    if now - device.received_at > silent_after:
        return Cause.NO_REPORT
    if now - (camera.last_frame_at or camera.first_reported_at) > silent_after:
        return Cause.NO_FRAME
    if settings.no_read_after_minutes:
        inside, began = daytime(settings, now)
        since = camera.last_read_at or camera.first_reported_at
        if inside and began is not None:
            since = max(since, began)
        if inside and now - since > timedelta(minutes=settings.no_read_after_minutes):
            return Cause.NO_READ
    if (
        open_episode is not None
        and open_episode.cause is Cause.NO_READ
        and (camera.last_read_at is None or camera.last_read_at < open_episode.opened_at)
    ):
        return Cause.NO_READ  # ends with a read, not with nightfall
    return None


def backlog_cause(device: DeviceState, settings: HealthSettings) -> Cause | None:
    if device.spool_depth > settings.spool_backlog_reads:
        return Cause.SPOOL_DEPTH
    age = device.spool_oldest_age_seconds
    if device.spool_depth and age is not None and age > settings.spool_backlog_minutes * 60:
        return Cause.SPOOL_AGE
    return None


def findings(
    devices: Sequence[DeviceState],
    cameras: Sequence[CameraState],
    episodes: dict[tuple[AlertKind, str], Episode],
    settings: HealthSettings,
    now: datetime,
) -> dict[tuple[AlertKind, str], Finding]:
    """Every condition that holds now, by (kind, subject)."""
    by_id = {d.device_id: d for d in devices}
    found: dict[tuple[AlertKind, str], Finding] = {}
    first_camera: dict[str, str] = {}
    for camera in cameras:
        device = by_id.get(camera.device_id)
        if device is None:
            continue
        first_camera.setdefault(device.device_id, camera.camera_id)
        key = (AlertKind.SILENT_CAMERA, camera.camera_id)
        cause = silent_cause(camera, device, settings, now, episodes.get(key))
        if cause is not None:
            found[key] = Finding(key[0], key[1], camera.camera_id, device.device_id, cause)
    for device in devices:
        camera_id = first_camera.get(device.device_id)
        cause = backlog_cause(device, settings)
        if cause is not None and camera_id is not None:
            key = (AlertKind.SPOOL_BACKLOG, device.device_id)
            found[key] = Finding(key[0], key[1], camera_id, device.device_id, cause)
    return found


@dataclass(frozen=True)
class _Plan:
    fresh: list[Finding]
    ended: list[Episode]
    about: dict[str, CameraState]


def _plan(conn: Connection, settings: HealthSettings, now: datetime) -> _Plan:
    """What this check would write: the conditions that began and the episodes that ended."""
    devices, cameras = latest(conn)
    live_devices = set(conn.execute(select(Device.id).where(Device.revoked_at.is_(None))).scalars())
    active_cameras = set(conn.execute(select(Camera.id).where(Camera.active)).scalars())
    devices = [d for d in devices if d.device_id in live_devices]
    cameras = [c for c in cameras if c.device_id in live_devices and c.camera_id in active_cameras]
    episodes = {
        (AlertKind(r.kind), r.subject): Episode(
            AlertKind(r.kind), r.subject, int(r.alert_id), r.opened_at, Cause(r.cause)
        )
        for r in conn.execute(select(HealthEpisode))
    }
    found = findings(devices, cameras, episodes, settings, now)
    return _Plan(
        fresh=[f for key, f in sorted(found.items()) if key not in episodes],
        ended=[e for key, e in sorted(episodes.items()) if key not in found],
        # The camera and device an open episode was about, for the row that clears it.
        about={c.camera_id: c for c in cameras},
    )


def check_health(
    *, db: Database, audit: AuditLog, settings: HealthSettings, now: datetime | None = None
) -> list[AlertInfo]:
    """One check of every watched camera and device: raise an alert for each condition that
    began, clear each that ended, in one transaction. Returns the alert rows written (raised
    and clearing), for the caller to wake the streams and the delivery loop after commit.
    A check that changes nothing only reads (no write lock on SQLite)."""
    now = now or datetime.now(UTC)
    with db.read() as conn:
        plan = _plan(conn, settings, now)
    if not plan.fresh and not plan.ended:
        return []
    with db.write() as conn:
        plan = _plan(conn, settings, now)  # again, under the write lock
        to_record = [DeviceAlertIn(f.kind, f.camera_id, f.device_id, f.cause) for f in plan.fresh]
        for episode in plan.ended:
            camera_id, device_id = _subject_of(conn, episode, plan.about)
            to_record.append(
                DeviceAlertIn(
                    episode.kind, camera_id, device_id, episode.cause, clears=episode.alert_id
                )
            )
        written = record_device_alerts(conn, audit=audit, actor=ACTOR, alerts=to_record, now=now)
        for finding, alert in zip(plan.fresh, written[: len(plan.fresh)], strict=True):
            conn.execute(
                insert(HealthEpisode).values(
                    kind=finding.kind.value,
                    subject=finding.subject,
                    alert_id=alert.id,
                    opened_at=now,
                    cause=finding.cause.value,
                )
            )
        for episode in plan.ended:
            conn.execute(
                delete(HealthEpisode).where(
                    HealthEpisode.kind == episode.kind.value,
                    HealthEpisode.subject == episode.subject,
                )
            )
    return written


def _subject_of(
    conn: Connection, episode: Episode, about: dict[str, CameraState]
) -> tuple[str, str]:
    """(camera, device) of the alert that opened ``episode``, as it was raised."""
    row = conn.execute(
        select(Alert.camera_id, Alert.device_id).where(Alert.id == episode.alert_id)
    ).first()
    if row is not None:
        return row.camera_id, row.device_id or ""
    # The raising alert was purged by retention: name what the subject still tells.
    if episode.kind is AlertKind.SILENT_CAMERA:
        camera = about.get(episode.subject)
        return episode.subject, camera.device_id if camera else ""
    camera_id = next((c.camera_id for c in about.values() if c.device_id == episode.subject), "")
    return camera_id, episode.subject
