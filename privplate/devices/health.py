"""Edge devices' health reports: the signed body of ``POST /devices/health``, how the server
keeps the latest one, and the per-camera gauges the metrics show.

A report holds counts, rates and times only (version, model digests, per-camera frames per
second, last frame and last read times, dropped reads, spool depth and oldest age, clock
offset): there is no field for a plate, a token or a read. Each report replaces the device's
last one, and each camera's row is replaced with it. Device times are moved to the server's
clock by the offset the signed request showed (server time minus its signed time), so ages
are right however wrong the device's clock is; the device's own figure is kept beside it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from privplate.devices.registry import DeviceInfo, check_cameras
from privplate.errors import InvalidRequest
from privplate.store.database import Database
from privplate.store.health_models import CameraHealth, DeviceHealth, HealthEpisode
from privplate.timestamps import Timestamp

#: Most cameras one report may name (a device's cameras; 64 is far above any box's).
MAX_CAMERAS = 64
MAX_MODELS = 8
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MODEL_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _models(value: dict[str, str]) -> dict[str, str]:
    for name, digest in value.items():
        if not _MODEL_FILE.fullmatch(name):
            raise ValueError("a model is named by its file name (letters, digits, '.', '_', '-')")
        if not _SHA256.fullmatch(digest):
            raise ValueError("a model digest is 64 lower-case hex digits (sha256)")
    return value


class CameraReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(min_length=1, max_length=64, examples=["gate-north"])
    frames_per_second: float = Field(ge=0.0, le=10_000.0)
    #: On the device's clock; null: no frame (or no read) since the edge started.
    last_frame_at: Timestamp | None = None
    last_read_at: Timestamp | None = None
    #: Reads the camera could not make since the edge started (its counter).
    dropped_reads: int = Field(default=0, ge=0, le=2**53)


class HealthReport(BaseModel):
    """What an edge device sends every ``edge.health_interval_seconds``."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9.+_-]+$")
    interval_seconds: float = Field(gt=0.0, le=86_400.0)
    models: Annotated[dict[str, str], AfterValidator(_models)] = Field(
        default_factory=dict, max_length=MAX_MODELS
    )
    cameras: list[CameraReport] = Field(min_length=1, max_length=MAX_CAMERAS)
    spool_depth: int = Field(ge=0, le=2**53)
    spool_oldest_age_seconds: float | None = Field(default=None, ge=0.0, le=1e9)
    #: The device's own estimate of its clock's offset (e.g. from NTP), if it has one.
    clock_offset_seconds: float | None = Field(default=None, ge=-1e7, le=1e7)


def record_report(
    *,
    db: Database,
    device: DeviceInfo,
    report: HealthReport,
    signed_at: datetime,
    now: datetime | None = None,
) -> float:
    """Keep ``report`` as the device's latest (and each camera's); returns the server's
    clock offset for the device (server time minus the request's signed time, seconds).
    Refuses a camera the device may not report for, or one named twice."""
    now = now or datetime.now(UTC)
    ids = [c.camera_id for c in report.cameras]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("a health report names each camera once")
    check_cameras(device, set(ids))
    offset = (now - signed_at).total_seconds()
    shift = timedelta(seconds=offset)

    def server_time(moment: datetime | None) -> datetime | None:
        return None if moment is None else moment.astimezone(UTC) + shift

    upsert = postgresql.insert if db.is_postgres else sqlite.insert
    device_row = {
        "device_id": device.id,
        "received_at": now,
        "server_offset_seconds": offset,
        "reported_offset_seconds": report.clock_offset_seconds,
        "version": report.version,
        "models": json.dumps(report.models, sort_keys=True),
        "spool_depth": report.spool_depth,
        "spool_oldest_age_seconds": report.spool_oldest_age_seconds,
        "interval_seconds": report.interval_seconds,
    }
    camera_rows = [
        {
            "camera_id": c.camera_id,
            "device_id": device.id,
            "first_reported_at": now,
            "received_at": now,
            "frames_per_second": c.frames_per_second,
            "last_frame_at": server_time(c.last_frame_at),
            "last_read_at": server_time(c.last_read_at),
            "dropped_reads": c.dropped_reads,
        }
        for c in report.cameras
    ]
    with db.write() as conn:
        stmt = upsert(DeviceHealth).values(device_row)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[DeviceHealth.device_id],
                set_={k: stmt.excluded[k] for k in device_row if k != "device_id"},
            )
        )
        cams = upsert(CameraHealth).values(camera_rows)
        kept = ("camera_id", "first_reported_at")
        conn.execute(
            cams.on_conflict_do_update(
                index_elements=[CameraHealth.camera_id],
                set_={k: cams.excluded[k] for k in camera_rows[0] if k not in kept},
            )
        )
        # A camera the device no longer reports (moved to another box, or dropped) goes.
        conn.execute(
            delete(CameraHealth).where(
                CameraHealth.device_id == device.id, CameraHealth.camera_id.not_in(ids)
            )
        )
    return offset


@dataclass(frozen=True)
class CameraState:
    camera_id: str
    device_id: str
    first_reported_at: datetime
    received_at: datetime
    frames_per_second: float
    last_frame_at: datetime | None
    last_read_at: datetime | None
    dropped_reads: int


@dataclass(frozen=True)
class DeviceState:
    device_id: str
    received_at: datetime
    server_offset_seconds: float
    reported_offset_seconds: float | None
    version: str
    models: dict[str, str]
    spool_depth: int
    spool_oldest_age_seconds: float | None
    interval_seconds: float


def latest(conn: Connection) -> tuple[list[DeviceState], list[CameraState]]:
    """Every device's latest report and every reported camera's row."""
    devices = [
        DeviceState(
            device_id=r.device_id,
            received_at=r.received_at,
            server_offset_seconds=float(r.server_offset_seconds),
            reported_offset_seconds=r.reported_offset_seconds,
            version=r.version,
            models=dict(json.loads(r.models)),
            spool_depth=int(r.spool_depth),
            spool_oldest_age_seconds=r.spool_oldest_age_seconds,
            interval_seconds=float(r.interval_seconds),
        )
        for r in conn.execute(select(DeviceHealth).order_by(DeviceHealth.device_id))
    ]
    cameras = [
        CameraState(
            camera_id=r.camera_id,
            device_id=r.device_id,
            first_reported_at=r.first_reported_at,
            received_at=r.received_at,
            frames_per_second=float(r.frames_per_second),
            last_frame_at=r.last_frame_at,
            last_read_at=r.last_read_at,
            dropped_reads=int(r.dropped_reads),
        )
        for r in conn.execute(select(CameraHealth).order_by(CameraHealth.camera_id))
    ]
    return devices, cameras


def _age(now: datetime, moment: datetime | None) -> float:
    return math.nan if moment is None else max(0.0, (now - moment).total_seconds())


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "NaN"
    return f"{value:.3f}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def health_metrics(db: Database, now: datetime | None = None) -> list[str]:
    """Prometheus lines of the devices' latest reports: per camera (frames per second, ages
    of the last frame and read, dropped reads) and per device (spool, clock offset, report
    age, version and models), plus the open device alerts. No read counts: a camera's
    health, not what it saw."""
    now = now or datetime.now(UTC)
    with db.read() as conn:
        devices, cameras = latest(conn)
        episodes = conn.execute(select(HealthEpisode.kind)).scalars().all()

    def cam(c: CameraState) -> str:
        return f'camera="{c.camera_id}",device="{c.device_id}"'

    def dev(d: DeviceState) -> str:
        return f'device="{d.device_id}"'

    open_kinds: dict[str, int] = {}
    for kind in episodes:
        open_kinds[kind] = open_kinds.get(kind, 0) + 1
    p = "privplate_"
    return [
        *_family(
            p + "camera_frames_per_second",
            "gauge",
            "Frames per second the camera's device last reported.",
            (f"{p}camera_frames_per_second{{{cam(c)}}} {c.frames_per_second:.3f}" for c in cameras),
        ),
        *_family(
            p + "camera_last_frame_age_seconds",
            "gauge",
            "Seconds since the camera's last frame (NaN: none since its edge started).",
            (
                f"{p}camera_last_frame_age_seconds{{{cam(c)}}} {_num(_age(now, c.last_frame_at))}"
                for c in cameras
            ),
        ),
        *_family(
            p + "camera_last_read_age_seconds",
            "gauge",
            "Seconds since the camera's last read (NaN: none since its edge started).",
            (
                f"{p}camera_last_read_age_seconds{{{cam(c)}}} {_num(_age(now, c.last_read_at))}"
                for c in cameras
            ),
        ),
        *_family(
            p + "camera_dropped_reads",
            "gauge",
            "Reads the camera's edge could not make since it started.",
            (f"{p}camera_dropped_reads{{{cam(c)}}} {c.dropped_reads}" for c in cameras),
        ),
        *_family(
            p + "device_spool_depth",
            "gauge",
            "Reads waiting in the device's spool.",
            (f"{p}device_spool_depth{{{dev(d)}}} {d.spool_depth}" for d in devices),
        ),
        *_family(
            p + "device_spool_oldest_age_seconds",
            "gauge",
            "Age of the oldest read waiting in the device's spool (0: empty).",
            (
                f"{p}device_spool_oldest_age_seconds{{{dev(d)}}} "
                f"{_num(d.spool_oldest_age_seconds or 0.0)}"
                for d in devices
            ),
        ),
        *_family(
            p + "device_clock_offset_seconds",
            "gauge",
            "Server time minus the device's (source=server: from its signed request time; "
            "source=device: its own figure).",
            (
                line
                for d in devices
                for line in (
                    f'{p}device_clock_offset_seconds{{{dev(d)},source="server"}} '
                    f"{_num(d.server_offset_seconds)}",
                    f'{p}device_clock_offset_seconds{{{dev(d)},source="device"}} '
                    f"{_num(d.reported_offset_seconds)}",
                )
            ),
        ),
        *_family(
            p + "device_report_age_seconds",
            "gauge",
            "Seconds since the device's last health report.",
            (
                f"{p}device_report_age_seconds{{{dev(d)}}} {_num(_age(now, d.received_at))}"
                for d in devices
            ),
        ),
        *_family(
            p + "device_info",
            "gauge",
            "The privplate version each device runs (always 1).",
            (f'{p}device_info{{{dev(d)},version="{d.version}"}} 1' for d in devices),
        ),
        *_family(
            p + "device_model_info",
            "gauge",
            "The model files each device loaded, with their sha256 (always 1).",
            (
                f'{p}device_model_info{{{dev(d)},model="{name}",sha256="{digest}"}} 1'
                for d in devices
                for name, digest in sorted(d.models.items())
            ),
        ),
        *_family(
            p + "device_alerts_open",
            "gauge",
            "Device alerts raised and not yet cleared, by kind.",
            (f'{p}device_alerts_open{{kind="{k}"}} {n}' for k, n in sorted(open_kinds.items())),
        ),
    ]
