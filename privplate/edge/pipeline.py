"""The edge pipeline: source frames -> motion gate -> plates -> tracks -> alerts -> reads.

One read per car: a read is made when its track closes; an alert goes out as soon as any
frame of the track matches a hotlist (with the read id the read will carry).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from privplate.edge.alerts import EdgeAlerts
from privplate.edge.reads import EdgeRead, KeySource, build_read, reading_tokens
from privplate.edge.sources import Frame, MotionGate, Source, cap_rate, prefetch
from privplate.edge.tracking import Track, Tracker
from privplate.errors import KeyringError
from privplate.store.ingest import ReadIn
from privplate.vision.reader import PlateReader
from privplate.vision.types import Box, Detection, ImageArray

if TYPE_CHECKING:
    from privplate.edge.config import Roi

log = logging.getLogger(__name__)


class ReadSink(Protocol):
    def put(self, item: EdgeRead) -> None: ...


class Replay(Protocol):
    """Read ids and the spool of a camera whose source can be read again after a restart
    (privplate.edge.runner.ReplayLedger)."""

    def read_id(self, cursor: str, n: int) -> uuid.UUID: ...

    def issued(self, read_id: uuid.UUID) -> bool: ...

    def put(self, item: EdgeRead) -> None: ...


#: Frames per second is measured over this many recent seconds.
RATE_WINDOW = 10.0


@dataclass
class Stats:
    frames: int = 0
    detected_frames: int = 0
    #: Frames the motion gate skipped (no detection ran).
    skipped_motion: int = 0
    #: Frames of a live camera dropped because detection was behind.
    dropped_frames: int = 0
    plates: int = 0
    reads: int = 0
    alerts: int = 0
    #: Reads that could not be made (not a plate, no epoch key).
    dropped: int = 0
    #: Reads made again after a restart and recognised as already spooled.
    replayed: int = 0
    last_frame_at: datetime | None = None
    last_read_at: datetime | None = None
    started: float = field(default_factory=time.monotonic)
    #: Seconds from a frame's arrival to its alert being emitted.
    alert_latencies: list[float] = field(default_factory=list)
    _recent: deque[float] = field(default_factory=lambda: deque(maxlen=4096), repr=False)

    def rate(self, count: int) -> float:
        return count / max(time.monotonic() - self.started, 1e-9)

    def frame_seen(self) -> None:
        self.frames += 1
        self.last_frame_at = datetime.now(UTC)
        self._recent.append(time.monotonic())

    def frames_per_second(self) -> float:
        """Frames per second over the last RATE_WINDOW seconds (since the start, if shorter)."""
        now = time.monotonic()
        recent = [t for t in list(self._recent) if now - t <= RATE_WINDOW]
        if not recent:
            return 0.0
        span = min(RATE_WINDOW, max(now - self.started, 1e-9))
        return len(recent) / span


class EdgePipeline:
    def __init__(
        self,
        reader: PlateReader,
        sink: ReadSink,
        *,
        camera_id: str,
        keys: KeySource,
        fold: Mapping[str, str] | None = None,
        evidence_key: bytes | None = None,
        alerts: EdgeAlerts | None = None,
        tracker: Tracker | None = None,
        motion: MotionGate | None = None,
        frame_side: int = 640,
        max_tokens: int = 8,
        on_read: Callable[[EdgeRead], None] | None = None,
        roi: Roi | None = None,
    ) -> None:
        self.reader = reader
        self.sink = sink
        self.camera_id = camera_id
        self.keys = keys
        self.fold = fold
        self.evidence_key = evidence_key
        self.alerts = alerts
        self.tracker = tracker or Tracker()
        self.motion = motion
        #: Only this part of the frame goes to the motion gate and the detector.
        self.roi = roi if roi is not None and not roi.whole else None
        #: Set for a camera whose source can be read again (privplate.edge.runner).
        self.replay: Replay | None = None
        self.frame_side = frame_side
        self.max_tokens = max_tokens
        self.on_read = on_read
        #: Called once a read whose track raised an edge alert is spooled: the uplink sends
        #: it now instead of waiting out its linger (privplate.edge.uplink.UplinkWorker.hurry).
        self.on_hit: Callable[[], None] | None = None
        self.stats = Stats()
        if evidence_key is None:
            log.warning("evidence_public_key is not set: reads are stored without evidence")

    def process(self, frame: Frame) -> list[EdgeRead]:
        """Both stages for one frame, one after the other."""
        return self.read_stage(*self._detect_stage(frame))

    def _region(self, image: ImageArray) -> tuple[ImageArray, int, int]:
        """The region of interest of ``image`` (a view, no copy) and its top-left corner."""
        if self.roi is None:
            return image, 0, 0
        height, width = image.shape[:2]
        x0, y0, x1, y1 = self.roi.pixels(width, height)
        return image[y0:y1, x0:x1], x0, y0

    def admit(self, frame: Frame) -> bool:
        """Count the frame; False when the motion gate finds nothing moved in the region."""
        self.stats.frame_seen()
        if self.motion is not None and not self.motion.moved(self._region(frame.image)[0]):
            self.stats.skipped_motion += 1
            return False
        return True

    def prime(self, frame: Frame) -> None:
        """A resumed run: the motion gate compares with this frame, as it did before."""
        if self.motion is not None:
            self.motion.prime(self._region(frame.image)[0])

    def detect(self, frame: Frame) -> list[Detection]:
        """Plates in the region of interest, in full-frame pixels."""
        self.stats.detected_frames += 1
        region, x0, y0 = self._region(frame.image)
        found = self.reader.detect([region])[0]
        if not (x0 or y0):
            return found
        return [
            Detection(Box(d.box.x1 + x0, d.box.y1 + y0, d.box.x2 + x0, d.box.y2 + y0), d.score)
            for d in found
        ]

    def _detect_stage(self, frame: Frame) -> tuple[Frame, list[Detection] | None, float]:
        """Motion gate and detector; None when the frame did not change enough to look at."""
        arrived = time.perf_counter()
        if not self.admit(frame):
            return frame, None, arrived
        return frame, self.detect(frame), arrived

    def read_stage(
        self, frame: Frame, detections: list[Detection] | None, arrived: float
    ) -> list[EdgeRead]:
        """OCR, tracking, alerts, tokens and sealing: everything that follows detection."""
        if detections is None:
            return self._emit(self.tracker.expire(frame.observed_at))
        readings = self.reader.recognize([frame.image], [detections])[0]
        self.stats.plates += len(readings)
        replay, cursor = self.replay, frame.cursor
        new_id = None
        if replay is not None and cursor is not None:

            def new_id(n: int) -> uuid.UUID:
                return replay.read_id(cursor, n)

        closed, seen = self.tracker.update(frame.observed_at, readings, frame.image, new_id=new_id)
        for track in seen:
            self._alert(track, arrived)
        return self._emit(closed)

    def finish(self) -> list[EdgeRead]:
        """Close every open track (end of a file, or shutdown)."""
        return self._emit(self.tracker.flush())

    def _alert(self, track: Track, arrived: float) -> None:
        if self.alerts is None or track.alerted:
            return
        try:
            epoch, tokens = reading_tokens(track, self.keys, self.fold, self.max_tokens)
        except KeyringError as exc:
            log.warning("no epoch key for alert matching: %s", exc)
            return
        if not tokens:
            return
        probe = ReadIn(track.read_id, self.camera_id, track.best_at, epoch.epoch_id, tokens, 0.0)
        if self.alerts.check(probe) is not None:
            track.alerted = True
            track.alerted_on = track.final  # its best reading so far: the track is open
            self.stats.alerts += 1
            self.stats.alert_latencies.append(time.perf_counter() - arrived)

    def _emit(self, tracks: list[Track]) -> list[EdgeRead]:
        made: list[EdgeRead] = []
        sink = self.replay or self.sink
        for track in tracks:
            if self.replay is not None and self.replay.issued(track.read_id):
                self.stats.replayed += 1  # made before a restart; already spooled
                continue
            try:
                item = build_read(
                    track,
                    camera_id=self.camera_id,
                    keys=self.keys,
                    fold=self.fold,
                    evidence_key=self.evidence_key,
                    frame_side=self.frame_side,
                    max_tokens=self.max_tokens,
                )
            except KeyringError as exc:
                self.stats.dropped += 1
                log.error("a read could not be tokenized and was dropped: %s", exc)
                continue
            if item is None:
                self.stats.dropped += 1
                continue
            sink.put(item)
            self.stats.reads += 1
            self.stats.last_read_at = datetime.now(UTC)
            made.append(item)
            if track.alerted and self.on_hit is not None:
                self.on_hit()
            if self.on_read is not None:
                self.on_read(item)
        return made

    def run(
        self,
        source: Source,
        *,
        max_fps: float = 0.0,
        stop: threading.Event | None = None,
        overlap: bool = True,
    ) -> Stats:
        """Process every frame of ``source`` (until ``stop`` is set), then close open tracks.

        With ``overlap`` the detector works on the next frame while a second thread reads the
        plates of this one (OCR, tracking, tokens, sealing), in frame order: on a machine with
        a spare core the stages after detection then cost no frame time.
        """
        if not overlap:
            for frame in cap_rate(prefetch(source.frames()), max_fps):
                if stop is not None and stop.is_set():
                    break
                self.process(frame)
            self.finish()
            return self.stats
        from privplate.edge.runner import EdgeRunner, Lane  # noqa: PLC0415 - it imports this

        EdgeRunner([Lane(self, source, max_fps=max_fps)]).run(stop)
        return self.stats
