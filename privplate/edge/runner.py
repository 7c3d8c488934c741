"""Several cameras in one process, sharing one detector and one recognizer.

Threads, for N cameras on a small box (2 cores):

* one **capture** thread per camera: decodes its frames (OpenCV releases the GIL), applies its
  frame-rate cap and motion gate (a downscaled grey frame difference on the region of
  interest), and hands at most ``depth`` frames to the detector. A file or folder waits for the
  detector; a live camera never waits: its oldest waiting frame is dropped (and counted).
* **detector** threads, the cores divided by ``edge.threads`` (at most one per camera): they
  take the cameras' frames in turn (round robin, so a busy camera cannot starve the others)
  and run the one detector session on each frame's region of interest. onnxruntime sessions
  may run from several threads at once; no two threads ever work on the same camera, so a
  camera's frames reach the reader in order.
* one **reading** thread: OCR, tracking (one tracker per camera), alerts, tokens, sealing and
  the spool, in each camera's frame order.

Detection is the heavy stage (about 100 ms a frame at 640 on one core, against a few ms of
OCR per plate), so with two or more cameras on a 2-core box two detector threads keep both
cores busy when each run uses one onnxruntime intra-op thread (``edge.threads = 1``; the
default 0 gives one detector thread all the cores, which measured about the same for three
cameras: benchmarks/edge_multicam.py); the OCR's short runs fill the gaps. One
camera gets one detector thread and the OCR overlapped on the other core, as before. There is
one detector and one recognizer session for all cameras: the models are loaded once.

**Resume.** For a camera whose source can be read again (an image, a folder, a video file) the
spool keeps where it was: the last frame after which no car was open (every read up to it is
spooled), the last frame the motion gate let through and the rate cap's state. Read ids of
those frames are derived from the spool's secret namespace, the run and the frame (not random),
and each read's id is noted in the spool with the read itself. After a crash (kill -9) the
camera goes on from its resume point: its motion gate is primed with the same frame, its cars
are made again with the same ids, and those already spooled are recognised and skipped; so
nothing is lost and nothing is stored twice. A source read to its end is not read again
(``privplate edge run --from-start`` forgets that). Live cameras cannot be replayed: what was
spooled is kept, the frames in memory at a crash are gone.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from privplate.edge.reads import EdgeRead
from privplate.edge.sources import (
    Frame,
    ImageSource,
    RateCap,
    Replayable,
    Source,
    VideoSource,
)

if TYPE_CHECKING:
    from privplate.edge.pipeline import EdgePipeline
    from privplate.edge.spool import Spool
    from privplate.vision.types import Detection

log = logging.getLogger(__name__)
#: A camera's resume point is written at most this often (each write is a synced commit).
CHECKPOINT_SECONDS = 1.0


class ReplayLedger:
    """Read ids and spooling for one camera of a replayable source (EdgePipeline.replay)."""

    def __init__(self, spool: Spool, camera: str, run: str, namespace: uuid.UUID) -> None:
        self.spool = spool
        self.camera = camera
        self.run = run
        self.namespace = namespace

    def read_id(self, cursor: str, n: int) -> uuid.UUID:
        return uuid.uuid5(self.namespace, f"{self.camera}\0{self.run}\0{cursor}\0{n}")

    def issued(self, read_id: uuid.UUID) -> bool:
        return self.spool.issued(read_id)

    def put(self, item: EdgeRead) -> None:
        self.spool.put(item, camera=self.camera)


@dataclass(frozen=True)
class Progress:
    """Where a camera's replayable source is, as kept in the spool."""

    #: What is being read (privplate.edge.sources.Replayable.identity).
    identity: str
    #: This reading of it: part of every read id, new when the source changes.
    run: str
    #: The last frame after which no car was open (everything up to it is spooled).
    done: str | None = None
    #: The last frame the motion gate let through, as of ``done``.
    gate: str | None = None
    #: The rate cap's state after ``done`` (videos; their clock is the video's).
    cap: float | None = None
    #: A video's start time (ISO 8601): frame times are this plus the position.
    origin: str | None = None
    finished: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object] | None) -> Progress | None:
        if data is None:
            return None
        try:
            return cls(**data)  # type: ignore[arg-type]
        except TypeError:
            return None  # written by another version: start the source again


@dataclass(frozen=True, eq=False)
class _Item:
    frame: Frame
    admitted: bool
    #: Cursor of the last frame the motion gate let through, as of this frame.
    gate: str | None
    #: The rate cap's state after this frame.
    cap: float
    arrived: float


@dataclass(frozen=True)
class _End:
    #: The source ran out (else the run was stopped or failed).
    exhausted: bool


class Lane:
    """One camera: its source, its pipeline (tracker, motion gate, region) and where it is."""

    def __init__(
        self,
        pipeline: EdgePipeline,
        source: Source,
        *,
        max_fps: float = 0.0,
        spool: Spool | None = None,
        from_start: bool = False,
    ) -> None:
        self.pipeline = pipeline
        self.source = source
        self.max_fps = max_fps
        self.spool = spool
        self.from_start = from_start
        self.queue: deque[_Item | _End] = deque()
        self.live = not isinstance(source, Replayable)
        self.status = "starting"
        #: The resume record being kept (replayable sources with a spool only).
        self.record: Progress | None = None
        self.finished_before = False
        self._last: _Item | None = None
        self._saved_at = float("-inf")
        self._gate: str | None = None

    @property
    def camera_id(self) -> str:
        return self.pipeline.camera_id

    def prepare(self) -> None:
        """Load (or start) this camera's resume record and give its pipeline the ledger."""
        spool, source = self.spool, self.source
        if spool is None or not isinstance(source, Replayable):
            return
        identity = source.identity()
        record = None if self.from_start else Progress.from_dict(spool.progress(self.camera_id))
        if record is None or record.identity != identity:
            origin = None
            if isinstance(source, VideoSource):
                source.started_at = source.started_at or datetime.now(UTC)
                origin = source.started_at.isoformat()
            record = Progress(identity, uuid.uuid4().hex, origin=origin)
            # Before any read of the run is spooled: a restart must know the run's ids.
            spool.save_progress(self.camera_id, record.as_dict())
        elif isinstance(source, VideoSource) and record.origin is not None:
            source.started_at = datetime.fromisoformat(record.origin)
        self.record = record
        self.finished_before = record.finished
        self.pipeline.replay = ReplayLedger(
            spool, self.camera_id, record.run, spool.read_id_namespace()
        )

    # -- the capture thread ---------------------------------------------------------------

    def capture(self, offer: _Offer, stopping: Callable[[], bool]) -> None:
        if self.finished_before:
            self.status = "read to its end before (--from-start reads it again)"
            offer(self, _End(exhausted=True))
            return
        record = self.record
        done = record.done if record is not None else None
        prime = record.gate if record is not None else None
        saved = record.cap if record is not None else None
        video = isinstance(self.source, VideoSource)
        cap = RateCap(self.max_fps, saved if video and saved is not None else float("-inf"))
        # A folder is paced, not thinned: each photo is a car, none may be dropped.
        pace = isinstance(self.source, ImageSource) and self.max_fps > 0
        due = time.monotonic()
        self._gate = prime
        start = prime if prime is not None else done
        if isinstance(self.source, Replayable):
            frames = self.source.frames(start) if start is not None else self.source.frames()
        else:
            frames = self.source.frames()
        exhausted = True
        self.status = "resuming" if done is not None else "reading"
        for frame in frames:
            if stopping():
                exhausted = False
                break
            cursor = frame.cursor
            if prime is not None and cursor == prime:
                self.pipeline.prime(frame)
                prime = None
            if done is not None and cursor is not None and cursor <= done:
                continue  # read before the restart
            self.status = getattr(self.source, "status", "reading")
            if pace:
                time.sleep(max(0.0, due - time.monotonic()))
                due = max(due, time.monotonic()) + 1.0 / self.max_fps
            elif not cap.take(frame):
                continue
            arrived = time.perf_counter()
            admitted = self.pipeline.admit(frame)
            if admitted:
                self._gate = cursor
            offer(self, _Item(frame, admitted, self._gate, cap.next_at, arrived))
        self.status = "done" if exhausted else "stopped"
        offer(self, _End(exhausted=exhausted))

    # -- the reading thread ---------------------------------------------------------------

    def after(self, item: _Item) -> None:
        """Frame ``item`` was read: move the resume point when no car is open."""
        if self.record is None or item.frame.cursor is None:
            return
        self._last = item
        if self.pipeline.tracker.open or time.monotonic() - self._saved_at < CHECKPOINT_SECONDS:
            return
        self._save(item, finished=False)

    def end(self, exhausted: bool) -> None:
        """The source ran out or the run stops: close every open car into a read.

        Only a source read to its end moves the resume point (then past everything); after a
        stop the reads of the cars just closed are in the ledger, so a resumed run that sees
        those cars again recognises them."""
        self.pipeline.finish()
        if self.record is None or not exhausted or self.finished_before:
            return
        if self._last is not None:
            self._save(self._last, finished=True)
        else:
            self._keep(replace(self.record, finished=True))

    def _save(self, item: _Item, *, finished: bool) -> None:
        if self.record is None:
            return
        video = isinstance(self.source, VideoSource)
        self._keep(
            replace(
                self.record,
                done=item.frame.cursor,
                gate=item.gate,
                cap=item.cap if video and item.cap != float("-inf") else None,
                finished=finished,
            )
        )
        self._saved_at = time.monotonic()

    def _keep(self, record: Progress) -> None:
        self.record = record
        if self.spool is not None:
            self.spool.save_progress(self.camera_id, record.as_dict())


class _Offer:
    """Hands a camera's frames to the detector: waits for room (files) or drops the oldest
    waiting frame (live cameras)."""

    def __init__(self, cond: threading.Condition, depth: int, halted: threading.Event) -> None:
        self.cond = cond
        self.depth = depth
        self.halted = halted

    def __call__(self, lane: Lane, item: _Item | _End) -> None:
        with self.cond:
            if isinstance(item, _Item):
                while len(lane.queue) >= self.depth:
                    if lane.live:
                        lane.queue.popleft()
                        lane.pipeline.stats.dropped_frames += 1
                        break
                    if self.halted.is_set():
                        return
                    self.cond.wait(0.1)
            lane.queue.append(item)
            self.cond.notify_all()


class EdgeRunner:
    """Runs every lane until its source ends or ``stop`` is set (see the module docstring)."""

    def __init__(
        self, lanes: Sequence[Lane], *, depth: int = 2, detectors: int | None = None
    ) -> None:
        if not lanes:
            raise ValueError("an edge run needs at least one camera")
        self.lanes = list(lanes)
        #: Detector threads (default one per core; privplate.edge.runtime.detector_threads),
        #: at most one per camera: a camera's frames are detected one at a time, in order.
        self.detectors = max(1, min(len(self.lanes), detectors or os.cpu_count() or 1))
        self.halted = threading.Event()  # stop, or a failure in any thread
        self.failure: list[BaseException] = []
        self.cond = threading.Condition()
        self.offer = _Offer(self.cond, depth, self.halted)
        self.stop = threading.Event()
        self.handoff: queue.Queue[tuple[Lane, _Item | _End, list[Detection] | None] | None] = (
            queue.Queue(maxsize=2 * len(self.lanes) + 2)
        )
        self._active = list(self.lanes)
        self._turn = 0
        self._busy: set[int] = set()
        self._detectors_left = self.detectors

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        self.stop = stop
        for lane in self.lanes:
            lane.prepare()
        threads = [
            threading.Thread(
                target=self._capture, args=(lane,), name=f"privplate-capture-{n}", daemon=True
            )
            for n, lane in enumerate(self.lanes)
        ]
        threads += [
            threading.Thread(target=self._detect, name=f"privplate-detect-{n}", daemon=True)
            for n in range(self.detectors)
        ]
        read_done = threading.Event()

        def read() -> None:
            try:
                self._read()
            finally:
                read_done.set()

        reader = threading.Thread(target=read, name="privplate-read", daemon=True)
        threads.append(reader)
        for thread in threads:
            thread.start()
        # Waited for on an Event, not by Thread.join: on CPython before 3.13 a Ctrl-C that
        # lands inside join() can mark the still-running thread as stopped (the interrupted
        # acquire releases the thread's own lock), and the run would return while the reader
        # still closes the last cars into reads, after the uplink's final drain.
        try:
            while not read_done.wait(0.2):
                if stop.is_set():
                    self.halted.set()
        except KeyboardInterrupt:
            stop.set()
            self.halted.set()
            read_done.wait()
        for thread in threads:
            thread.join(timeout=10)
        if self.failure:
            raise self.failure[0]

    def _fail(self, exc: BaseException) -> None:
        self.failure.append(exc)
        self.halted.set()
        with self.cond:
            self.cond.notify_all()

    def _capture(self, lane: Lane) -> None:
        try:
            lane.capture(self.offer, lambda: self.halted.is_set() or self.stop.is_set())
        except BaseException as exc:  # re-raised in the caller's thread
            self._fail(exc)
            self.offer(lane, _End(exhausted=False))

    def _next(self) -> tuple[Lane, _Item | _End] | None:
        """The next waiting frame of a camera no other detector thread is working on, taking
        the cameras in turn; None once every camera has ended."""
        with self.cond:
            while self._active:
                turn = self._turn % len(self._active)
                order = self._active[turn:] + self._active[:turn]
                lane = next((x for x in order if x.queue and id(x) not in self._busy), None)
                if lane is None:
                    self.cond.wait(0.1)
                    continue
                item = lane.queue.popleft()
                self._busy.add(id(lane))
                self._turn = self._active.index(lane) + 1
                if isinstance(item, _End):
                    self._active.remove(lane)
                self.cond.notify_all()
                return lane, item
            return None

    def _detect(self) -> None:
        while (taken := self._next()) is not None:
            lane, item = taken
            try:
                found = None
                if isinstance(item, _Item) and item.admitted and not self.failure:
                    try:
                        found = lane.pipeline.detect(item.frame)
                    except BaseException as exc:
                        self._fail(exc)
                # Before the camera is free again: its frames reach the reader in order.
                self.handoff.put((lane, item, found))
            finally:
                with self.cond:
                    self._busy.discard(id(lane))
                    self.cond.notify_all()
        with self.cond:
            self._detectors_left -= 1
            last = self._detectors_left == 0
        if last:
            self.handoff.put(None)

    def _read(self) -> None:
        while (entry := self.handoff.get()) is not None:
            if self.failure:
                continue  # drain so the detector is never blocked
            lane, item, found = entry
            try:
                if isinstance(item, _End):
                    lane.end(item.exhausted)
                    continue
                lane.pipeline.read_stage(item.frame, found, item.arrived)
                lane.after(item)
            except BaseException as exc:
                self._fail(exc)
