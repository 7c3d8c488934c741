"""When each camera and device was last heard from: counts and times only, never a plate.
What the operator's dashboard shows and the MQTT publisher sends Home Assistant.

Each query stays cheap with millions of reads stored: today's reads come from the per-camera
daily counts, a camera's last read is one backwards step along the reads' primary key (which
leads with ``observed_at``) inside its last counted day, a device's last contact is the newest
of its batch receipts and signed-request nonces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import func, select

from privplate.devices import registry
from privplate.devices.registry import DeviceInfo
from privplate.store.cameras import CameraInfo, list_cameras
from privplate.store.database import Database
from privplate.store.models import Read, ReadCount
from privplate.store.server_models import DeviceBatch, DeviceNonce


@dataclass(frozen=True)
class CameraRow:
    camera: CameraInfo
    reads_today: int
    last_read: datetime | None
    #: The last day with stored reads, when the reads themselves are gone (retention).
    last_day: date | None


@dataclass(frozen=True)
class DeviceRow:
    device: DeviceInfo
    last_contact: datetime | None


def cameras(db: Database, now: datetime | None = None) -> list[CameraRow]:
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    found = list_cameras(db=db)
    with db.read() as conn:
        last_days = dict(
            conn.execute(
                select(ReadCount.camera_id, func.max(ReadCount.day)).group_by(ReadCount.camera_id)
            ).all()
        )
        counted = dict(
            conn.execute(
                select(ReadCount.camera_id, func.sum(ReadCount.reads))
                .where(ReadCount.day == today)
                .group_by(ReadCount.camera_id)
            ).all()
        )
        last_reads: dict[str, datetime | None] = {}
        for cam in found:
            day = last_days.get(cam.id)
            if day is None:
                continue
            last_reads[cam.id] = conn.execute(
                select(Read.observed_at)
                .where(
                    Read.observed_at >= datetime.combine(day, time(), UTC),
                    Read.camera_id == cam.id,
                )
                .order_by(Read.observed_at.desc())
                .limit(1)
            ).scalar()
    return [
        CameraRow(
            camera=cam,
            reads_today=int(counted.get(cam.id) or 0),
            last_read=last_reads.get(cam.id),
            last_day=last_days.get(cam.id),
        )
        for cam in found
    ]


def devices(db: Database) -> list[DeviceRow]:
    found = registry.list_devices(db=db)
    with db.read() as conn:
        batches = dict(
            conn.execute(
                select(DeviceBatch.device_id, func.max(DeviceBatch.received_at)).group_by(
                    DeviceBatch.device_id
                )
            ).all()
        )
        nonces = dict(
            conn.execute(
                select(DeviceNonce.device_id, func.max(DeviceNonce.seen_at)).group_by(
                    DeviceNonce.device_id
                )
            ).all()
        )
    rows = []
    for device in found:
        seen = [t for t in (batches.get(device.id), nonces.get(device.id)) if t is not None]
        rows.append(DeviceRow(device, max(seen) if seen else None))
    return rows
