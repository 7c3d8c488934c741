"""Retention of server records: expired hotlist entries (and their tokens), old alerts,
spent nonces and sessions go with the purge; the purge's audit entry counts them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from privplate.alerts import alerts_after
from privplate.deployment import Deployment
from privplate.devices.enrolment import create_code
from privplate.hotlists import EntryIn, HotlistSource
from privplate.retention.purge import purge
from privplate.services import Services
from tests import factories


@pytest.fixture
def services(dep: Deployment) -> Iterator[Services]:
    # Closed after the test: an ingest starts the webhook threads, which would otherwise go on
    # polling a database the next test's fixture has dropped.
    with Services(dep) as opened:
        yield opened


def _count(dep: Deployment, table: str) -> int:
    with dep.db.read() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_purge_removes_expired_entries_old_alerts_and_counts_them(
    dep: Deployment, services: Services
) -> None:
    factories.camera(dep, "gate-1")
    now = datetime.now(UTC)
    services.hotlists.create(actor="op", name="stolen", source=HotlistSource.STOLEN_VEHICLE)
    services.hotlists.add_entries(
        actor="op",
        hotlist="stolen",
        entries=[
            EntryIn("1ABC234", "stolen", "C-1", now + timedelta(hours=1)),
            EntryIn("5XYZ678", "stolen", "C-2", now + timedelta(days=20)),
        ],
    )
    _, alerts = services.ingest([factories.read(dep, "1ABC234", camera_id="gate-1")], actor="t")
    assert len(alerts) == 1
    assert _count(dep, "hotlist_tokens") == 2

    report = purge(dep, now=now + timedelta(hours=2))
    assert report.records_deleted["hotlist_entries"] == 1
    assert report.records_deleted["hotlist_tokens"] == 1
    assert _count(dep, "hotlist_entries") == 1
    # The alert outlives its entry until the hit-read window passes.
    listed = alerts_after(db=dep.db, after_id=0)
    assert len(listed) == 1 and listed[0].reason == "(entry expired)"
    audit = next(iter(dep.audit.entries(action="retention.purged", newest_first=True, limit=1)))
    assert audit.entry is not None
    assert audit.entry.details["records_deleted"]["hotlist_entries"] == 1

    later = now + dep.settings.retention_window("hit_reads") + timedelta(days=1)
    report = purge(dep, now=later)
    assert report.records_deleted["alerts"] == 1
    assert alerts_after(db=dep.db, after_id=0) == []


def test_read_totals_outlive_the_reads_until_the_audit_window(dep: Deployment) -> None:
    factories.camera(dep, "gate-1")
    now = datetime.now(UTC)
    factories.ingest(
        dep, [factories.read(dep, "1ABC234", camera_id="gate-1", observed_at=now)], now=now
    )
    assert _count(dep, "read_counts") == 1
    after_reads = now + dep.settings.retention_window("non_hit_reads") + timedelta(days=1)
    report = purge(dep, now=after_reads)
    assert report.reads_total == 1 and _count(dep, "reads") == 0
    assert _count(dep, "read_counts") == 1  # the day's total stays for transparency reports
    after_audit = now + dep.settings.retention_window("audit_entries") + timedelta(days=2)
    report = purge(dep, now=after_audit)
    assert report.records_deleted["read_counts"] == 1 and _count(dep, "read_counts") == 0


def test_spent_enrolment_codes_go_a_week_after_they_expire(
    dep: Deployment, services: Services
) -> None:
    factories.camera(dep, "gate-1")
    now = datetime.now(UTC)
    create_code(
        db=dep.db, audit=dep.audit, secret=services.secret, actor="admin", cameras=["gate-1"]
    )
    assert purge(dep, now=now + timedelta(days=1)).records_deleted["enrolment_codes"] == 0
    assert _count(dep, "enrolment_codes") == 1
    assert purge(dep, now=now + timedelta(days=8)).records_deleted["enrolment_codes"] == 1
    assert _count(dep, "enrolment_codes") == 0


def test_health_reports_of_revoked_devices_go_with_the_next_purge(dep: Deployment) -> None:
    from privplate.devices import DeviceKey, registry
    from privplate.devices.health import CameraReport, HealthReport, record_report

    for camera in ("gate-1", "gate-2"):
        factories.camera(dep, camera)
    devices = {
        name: registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor="admin",
            device_id=name,
            public_key=DeviceKey.generate(name).public_key,
            cameras=[camera],
        )
        for name, camera in (("edge-1", "gate-1"), ("edge-2", "gate-2"))
    }
    now = datetime.now(UTC)
    for device in devices.values():
        report = HealthReport(
            version="0.1.0",
            interval_seconds=60,
            cameras=[CameraReport(camera_id=device.cameras[0], frames_per_second=5.0)],
            spool_depth=0,
        )
        record_report(db=dep.db, device=device, report=report, signed_at=now)
    assert (_count(dep, "device_health"), _count(dep, "camera_health")) == (2, 2)

    # A live device's report stays, however old.
    kept = purge(dep, now=now + timedelta(days=400)).records_deleted
    assert (kept["device_health"], kept["camera_health"]) == (0, 0)

    registry.revoke_device(db=dep.db, audit=dep.audit, actor="admin", device_id="edge-2")
    gone = purge(dep, now=now).records_deleted
    assert (gone["device_health"], gone["camera_health"]) == (1, 1)
    with dep.db.read() as conn:
        left = conn.execute(text("SELECT device_id FROM device_health")).scalars().all()
        cameras = conn.execute(text("SELECT camera_id FROM camera_health")).scalars().all()
    assert (left, cameras) == (["edge-1"], ["gate-1"])
