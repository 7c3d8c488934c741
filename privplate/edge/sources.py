"""Where frames come from: an image, a folder, a video file, or a camera stream (RTSP/HTTP).

A bad input never stops the edge: an unreadable file or a broken video is logged with the
reason (never with what is in it) and skipped; a stream that fails or stalls is reopened with
exponential backoff.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from privplate.edge.images import IMAGE_SUFFIXES, decode_image
from privplate.errors import SourceError
from privplate.vision._deps import cv2_module
from privplate.vision.types import ImageArray

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mjpeg", ".ts"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://")


@dataclass(frozen=True, eq=False)
class Frame:
    image: ImageArray = field(repr=False)
    observed_at: datetime
    index: int
    #: Seconds on the source's own clock (video position, or wall clock for live sources).
    clock: float
    #: Where the frame is in a source that can be read again (a file's name in a folder, a
    #: video's frame number, zero-padded so cursors sort as the frames do); None when live.
    cursor: str | None = None


class Source(Protocol):
    name: str

    def frames(self) -> Iterator[Frame]: ...


@runtime_checkable
class Replayable(Protocol):
    """A source that gives the same frames again after a restart (files, folders, videos):
    the edge keeps where it was per camera and goes on from there (privplate.edge.runner)."""

    name: str

    def identity(self) -> str:
        """What is being read: a different file under the same name is another identity."""
        ...

    def frames(self, start: str | None = None) -> Iterator[Frame]:
        """Frames from the one whose cursor is ``start`` (inclusive), else from the first."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


class ImageSource:
    """One still image, or every image of a folder (sorted by name)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(
                (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                key=lambda p: p.name,
            )
        return [self.path]

    def identity(self) -> str:
        """A folder is itself (files added later with later names are read on resume); a
        single image is its path, size and modification time."""
        if self.path.is_dir():
            return f"folder {self.path.resolve()}"
        return f"image {_file_identity(self.path)}"

    def frames(self, start: str | None = None) -> Iterator[Frame]:
        for index, path in enumerate(self._files()):
            if start is not None and path.name < start:
                continue
            try:
                image = decode_image(path)
            except SourceError as exc:
                log.warning("%s", exc)
                continue
            yield Frame(image, _now(), index, time.monotonic(), cursor=path.name)


class VideoSource:
    """A video file; frame times are the start time plus the position in the video."""

    def __init__(self, path: Path, *, started_at: datetime | None = None) -> None:
        self.path = path
        self.name = path.name
        #: Frame times are this plus the position in the video (now, when None). A resumed
        #: run keeps the first run's, so a frame read again has the time it had.
        self.started_at = started_at

    def identity(self) -> str:
        return f"video {_file_identity(self.path)}"

    def frames(self, start: str | None = None) -> Iterator[Frame]:
        cv2 = cv2_module()
        if not self.path.is_file() or self.path.stat().st_size == 0:
            log.warning("%s: video file is missing or empty, skipped", self.name)
            return
        first = int(start) if start is not None else 0
        capture = cv2.VideoCapture(str(self.path))
        try:
            if not capture.isOpened():
                log.warning(
                    "%s: not a readable video (corrupt or unknown codec), skipped", self.name
                )
                return
            fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
            begin = self.started_at or _now()
            index = 0
            while index < first:  # skipped without decoding: grab() only demuxes
                if not capture.grab():
                    return
                index += 1
            while True:
                ok, image = capture.read()
                if not ok or image is None:
                    break
                clock = index / fps if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                yield Frame(
                    image,
                    begin + timedelta(seconds=clock),
                    index,
                    clock,
                    cursor=f"{index:010d}",
                )
                index += 1
            if index == 0:
                log.warning("%s: the video has no decodable frame, skipped", self.name)
        finally:
            capture.release()


@dataclass
class Backoff:
    """Exponential backoff between reconnects: 0.5 s, 1 s, 2 s ... up to ``cap``."""

    initial: float = 0.5
    cap: float = 30.0
    current: float = 0.0

    def next_delay(self) -> float:
        self.current = self.initial if self.current == 0 else min(self.cap, self.current * 2)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


def _redact(url: str) -> str:
    """The URL without credentials (rtsp://user:pass@host/...)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


class StreamSource:
    """A live camera via OpenCV (FFmpeg): reopened with backoff when it fails or stalls."""

    def __init__(
        self,
        url: str,
        *,
        stall_seconds: float = 10.0,
        max_reconnects: int | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        opener: Callable[[str], Any] | None = None,
    ) -> None:
        self.url = url
        self.name = _redact(url)
        self.stall_seconds = stall_seconds
        self.max_reconnects = max_reconnects
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.opener = opener or self._open
        self.reconnects = 0
        self.status = "starting"

    def _open(self, url: str) -> Any:
        cv2 = cv2_module()
        timeout_ms = int(self.stall_seconds * 1000)
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            timeout_ms,
        ]
        return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)

    def frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            capture = self.opener(self.url)
            try:
                if capture is None or not capture.isOpened():
                    self.status = "cannot connect"
                    log.warning("%s: cannot open the stream", self.name)
                else:
                    self.status = "live"
                    last = time.monotonic()
                    while True:
                        ok, image = capture.read()
                        now = time.monotonic()
                        if not ok or image is None:
                            # A read that fails right away is a dropped connection; one that
                            # took longer than stall_seconds is a stalled camera.
                            stalled = now - last >= self.stall_seconds
                            self.status = "stalled" if stalled else "disconnected"
                            log.warning("%s: stream %s, reconnecting", self.name, self.status)
                            break
                        last = now
                        self.backoff.reset()
                        yield Frame(image, _now(), index, now)
                        index += 1
            finally:
                if capture is not None:
                    capture.release()
            if self.max_reconnects is not None and self.reconnects >= self.max_reconnects:
                log.warning("%s: giving up after %d reconnects", self.name, self.reconnects)
                self.status = "gave up"
                return
            self.reconnects += 1
            delay = self.backoff.next_delay()
            self.status = f"reconnecting in {delay:.1f}s"
            self.sleep(delay)


def open_source(spec: str) -> Source:
    """A source from the --source argument: a URL, a folder, a video or an image file."""
    if spec.startswith(STREAM_SCHEMES):
        return StreamSource(spec)
    if spec.isdigit():
        return StreamSource(spec)  # a local camera index
    path = Path(spec)
    if path.is_dir():
        return ImageSource(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    raise SourceError(
        f"--source {spec!r} is neither a camera URL (rtsp://, http://), a folder, a video "
        f"({', '.join(sorted(VIDEO_SUFFIXES))}) nor an image ({', '.join(sorted(IMAGE_SUFFIXES))})"
    )


def _file_identity(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return f"{path.resolve()} (missing)"
    return f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}"


class RateCap:
    """At most ``max_fps`` frames per second of the source's clock (0: every frame).

    ``next_at`` is its whole state: a resumed video run restores it, so the same frames are
    picked as in the run that was interrupted."""

    def __init__(self, max_fps: float, next_at: float = float("-inf")) -> None:
        self.interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self.slack = self.interval * 0.05  # clocks jitter; 29.97 fps capped to 10 must give 10
        self.next_at = next_at

    def take(self, frame: Frame) -> bool:
        if self.interval <= 0:
            return True
        if frame.clock >= self.next_at - self.slack:
            self.next_at = max(
                self.next_at + self.interval, frame.clock + self.interval - self.slack
            )
            return True
        return False


def cap_rate(frames: Iterator[Frame], max_fps: float) -> Iterator[Frame]:
    """At most ``max_fps`` frames per second of the source's clock (0: every frame)."""
    cap = RateCap(max_fps)
    for frame in frames:
        if cap.take(frame):
            yield frame


def prefetch(frames: Iterator[Frame], depth: int = 2) -> Iterator[Frame]:
    """Decode the next frames in a background thread while this one is being read.

    Decoding (JPEG, video) releases the GIL, so on a machine with a spare core it overlaps
    with detection instead of adding to it. At most ``depth`` frames wait in memory.
    """
    slots: queue.Queue[Frame | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for frame in frames:
                while not stop.is_set():
                    try:
                        slots.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put(exc)

    worker = threading.Thread(target=produce, name="privplate-decode", daemon=True)
    worker.start()
    try:
        while (item := slots.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


class MotionGate:
    """Skips frames that barely differ from the last frame that went to detection."""

    def __init__(
        self, threshold: float, *, size: tuple[int, int] = (96, 54), pixel_delta: int = 25
    ) -> None:
        self.threshold = threshold
        self.size = size
        self.pixel_delta = pixel_delta
        self._last: ImageArray | None = None

    def _small(self, image: ImageArray) -> ImageArray:
        cv2 = cv2_module()
        small = cv2.cvtColor(
            cv2.resize(image, self.size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY
        )
        blurred: ImageArray = cv2.GaussianBlur(small, (3, 3), 0)
        return blurred

    def prime(self, image: ImageArray) -> None:
        """Compare later frames with ``image`` (a resumed run: the last frame that passed)."""
        if self.threshold > 0:
            self._last = self._small(image)

    def moved(self, image: ImageArray) -> bool:
        if self.threshold <= 0:
            return True
        cv2 = cv2_module()
        small = self._small(image)
        if self._last is None:
            self._last = small
            return True
        changed = float((cv2.absdiff(small, self._last) > self.pixel_delta).mean())
        if changed >= self.threshold:
            self._last = small
            return True
        return False


class SettledGate(MotionGate):
    """A motion gate that also thins detection while every car in view is already read.

    ``settled()`` (privplate.edge.tracking.Tracker.settled) is asked for each frame that
    moved: while it holds, only every ``stride``-th such frame goes to the detector and the
    OCR, the others are skipped like frames without motion. A car driving through stays in
    its track (a track closes only after edge.track_seconds unseen), and a new car is seen at
    most ``stride - 1`` frames late. ``stride`` 1 is the plain motion gate.
    """

    def __init__(
        self,
        threshold: float,
        settled: Callable[[], bool],
        *,
        stride: int = 3,
        size: tuple[int, int] = (96, 54),
        pixel_delta: int = 25,
    ) -> None:
        super().__init__(threshold, size=size, pixel_delta=pixel_delta)
        self.settled = settled
        self.stride = max(1, stride)
        self._since = 0

    def moved(self, image: ImageArray) -> bool:
        if self.stride > 1 and self._since < self.stride - 1 and self.settled():
            self._since += 1
            return False
        if not super().moved(image):
            return False
        self._since = 0
        return True
