"""Device alerts raised the way the deployment's leader raises them: a device registered for a
camera sends a health report (privplate.devices.health.record_report, what POST
/devices/health keeps), and one health check (privplate.alerts.device_alerts.check_health)
finds the camera silent; a fresh report and another check clear it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from privplate.alerts import AlertInfo, alerts_after, latest_alert_id
from privplate.alerts.device_alerts import check_health
from privplate.deployment import Deployment
from privplate.devices import DeviceKey, registry
from privplate.devices.health import HealthReport, record_report
from privplate.devices.registry import DeviceInfo
from privplate.settings import HealthSettings

#: All day (no "no read in daytime" finding), silent after 10 minutes without a frame.
HEALTH = HealthSettings(silent_after_minutes=10, daytime_hours="00:00-24:00")


def add_device(dep: Deployment, device_id: str, cameras: list[str]) -> DeviceInfo:
    return registry.register_device(
        db=dep.db,
        audit=dep.audit,
        actor="test-setup",
        device_id=device_id,
        public_key=DeviceKey.generate(device_id).public_key,
        cameras=cameras,
    )


def report(dep: Deployment, device: DeviceInfo, *, frame_age_minutes: float) -> None:
    now = datetime.now(UTC)
    last_frame = (now - timedelta(minutes=frame_age_minutes)).isoformat()
    body = HealthReport.model_validate(
        {
            "version": "0.1.0",
            "interval_seconds": 60,
            "cameras": [
                {"camera_id": c, "frames_per_second": 5.0, "last_frame_at": last_frame}
                for c in device.cameras
            ],
            "spool_depth": 0,
        }
    )
    record_report(db=dep.db, device=device, report=body, signed_at=now, now=now)


def check(dep: Deployment) -> list[AlertInfo]:
    return check_health(db=dep.db, audit=dep.audit, settings=HEALTH)


def _new_rows(dep: Deployment, device: DeviceInfo, after: int) -> list[AlertInfo]:
    found = alerts_after(db=dep.db, after_id=after, limit=1000)
    return [a for a in found if a.device_id == device.id and a.kind == "silent_camera"]


def silent_camera(dep: Deployment, device: DeviceInfo) -> AlertInfo:
    """The device's (one) camera has sent no frame for 20 minutes: one silent-camera alert.
    Beside a running server, its leader's own check may be the one that raises it: either way
    there is exactly one."""
    before = latest_alert_id(db=dep.db)
    report(dep, device, frame_age_minutes=20)
    check(dep)
    (raised,) = [a for a in _new_rows(dep, device, before) if a.clears is None]
    return raised


def camera_back(dep: Deployment, device: DeviceInfo) -> AlertInfo:
    """Frames again: the row that clears the device's silent-camera alert."""
    before = latest_alert_id(db=dep.db)
    report(dep, device, frame_age_minutes=0)
    check(dep)
    (cleared,) = [a for a in _new_rows(dep, device, before) if a.clears is not None]
    return cleared
