"""What a running edge reports about itself: per-camera figures, spool and uplink.

Counts, rates and times only, never a plate or a source's credentials: the same figures feed
the live display and the device's health reports to the server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privplate.edge.runner import Lane
    from privplate.edge.spool import Spool
    from privplate.edge.uplink import UplinkWorker


@dataclass(frozen=True)
class CameraSnapshot:
    camera_id: str
    #: The source's name (a file name, or a URL without its credentials).
    source: str
    status: str
    frames: int
    #: Frames per second over the last few seconds.
    frames_per_second: float
    frames_skipped_motion: int
    #: Frames of a live camera dropped because detection was behind.
    frames_dropped: int
    #: Plates seen in frames (a car seen in ten frames counts ten).
    sightings: int
    reads: int
    alerts: int
    #: Reads that could not be made (not a plate, no epoch key).
    dropped_reads: int
    last_frame_at: datetime | None
    last_read_at: datetime | None


@dataclass(frozen=True)
class EdgeSnapshot:
    taken_at: datetime
    mode: str
    cameras: tuple[CameraSnapshot, ...]
    spool_depth: int
    #: Seconds the oldest waiting read has been in the spool (None: the spool is empty).
    spool_oldest_age_seconds: float | None
    #: Reads in batches the server refused (``privplate edge spool``).
    set_aside_reads: int
    uplink_status: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601)."""

        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        result: dict[str, Any] = plain(asdict(self))
        return result


def camera_snapshot(lane: Lane) -> CameraSnapshot:
    stats = lane.pipeline.stats
    return CameraSnapshot(
        camera_id=lane.camera_id,
        source=lane.source.name,
        status=str(getattr(lane.source, "status", lane.status)) if lane.live else lane.status,
        frames=stats.frames,
        frames_per_second=round(stats.frames_per_second(), 2),
        frames_skipped_motion=stats.skipped_motion,
        frames_dropped=stats.dropped_frames,
        sightings=stats.plates,
        reads=stats.reads,
        alerts=stats.alerts,
        dropped_reads=stats.dropped,
        last_frame_at=stats.last_frame_at,
        last_read_at=stats.last_read_at,
    )


def edge_snapshot(lanes: list[Lane], spool: Spool, worker: UplinkWorker, mode: str) -> EdgeSnapshot:
    age = spool.oldest_age()
    return EdgeSnapshot(
        taken_at=datetime.now(UTC),
        mode=mode,
        cameras=tuple(camera_snapshot(lane) for lane in lanes),
        spool_depth=spool.depth(),
        spool_oldest_age_seconds=round(age, 1) if age is not None else None,
        set_aside_reads=spool.set_aside_count()[1],
        uplink_status=worker.status,
    )
