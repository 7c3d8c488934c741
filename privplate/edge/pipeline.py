"""The edge pipeline: source frames -> motion gate -> plates -> tracks -> alerts -> reads.

One read per car: a read is made when its track closes; an alert goes out as soon as any
frame of the track matches a hotlist (with the read id the read will carry).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from privplate.edge.alerts import EdgeAlerts
from privplate.edge.reads import EdgeRead, KeySource, build_read, reading_tokens
from privplate.edge.sources import Frame, MotionGate, Source, cap_rate, prefetch
from privplate.edge.tracking import Track, Tracker
from privplate.errors import KeyringError
from privplate.store.ingest import ReadIn
from privplate.vision.reader import PlateReader
from privplate.vision.types import Detection

log = logging.getLogger(__name__)


class ReadSink(Protocol):
    def put(self, item: EdgeRead) -> None: ...


@dataclass
class Stats:
    frames: int = 0
    detected_frames: int = 0
    plates: int = 0
    reads: int = 0
    alerts: int = 0
    dropped: int = 0
    started: float = field(default_factory=time.monotonic)
    #: Seconds from a frame's arrival to its alert being emitted.
    alert_latencies: list[float] = field(default_factory=list)

    def rate(self, count: int) -> float:
        return count / max(time.monotonic() - self.started, 1e-9)


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
        return self._read_stage(*self._detect_stage(frame))

    def _detect_stage(self, frame: Frame) -> tuple[Frame, list[Detection] | None, float]:
        """Motion gate and detector; None when the frame did not change enough to look at."""
        arrived = time.perf_counter()
        self.stats.frames += 1
        if self.motion is not None and not self.motion.moved(frame.image):
            return frame, None, arrived
        self.stats.detected_frames += 1
        return frame, self.reader.detect([frame.image])[0], arrived

    def _read_stage(
        self, frame: Frame, detections: list[Detection] | None, arrived: float
    ) -> list[EdgeRead]:
        """OCR, tracking, alerts, tokens and sealing: everything that follows detection."""
        if detections is None:
            return self._emit(self.tracker.expire(frame.observed_at))
        readings = self.reader.recognize([frame.image], [detections])[0]
        self.stats.plates += len(readings)
        closed, seen = self.tracker.update(frame.observed_at, readings, frame.image)
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
            self.stats.alerts += 1
            self.stats.alert_latencies.append(time.perf_counter() - arrived)

    def _emit(self, tracks: list[Track]) -> list[EdgeRead]:
        made: list[EdgeRead] = []
        for track in tracks:
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
            self.sink.put(item)
            self.stats.reads += 1
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
        frames = cap_rate(prefetch(source.frames()), max_fps)
        if not overlap:
            for frame in frames:
                if stop is not None and stop.is_set():
                    break
                self.process(frame)
            self.finish()
            return self.stats
        handoff: queue.Queue[tuple[Frame, list[Detection] | None, float] | None] = queue.Queue(
            maxsize=2
        )
        failure: list[BaseException] = []

        def read_stage() -> None:
            while (item := handoff.get()) is not None:
                if failure:
                    continue  # drain so the detector is never blocked
                try:
                    self._read_stage(*item)
                except BaseException as exc:  # re-raised in the caller's thread
                    failure.append(exc)

        reader = threading.Thread(target=read_stage, name="privplate-read", daemon=True)
        reader.start()
        try:
            for frame in frames:
                if (stop is not None and stop.is_set()) or failure:
                    break
                handoff.put(self._detect_stage(frame))
        finally:
            handoff.put(None)
            reader.join()
        if failure:
            raise failure[0]
        self.finish()
        return self.stats
