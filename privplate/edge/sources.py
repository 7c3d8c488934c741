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
from typing import Any, Protocol

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


class Source(Protocol):
    name: str

    def frames(self) -> Iterator[Frame]: ...


def _now() -> datetime:
    return datetime.now(UTC)


class ImageSource:
    """One still image, or every image of a folder (sorted by name)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name

    def _files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return [self.path]

    def frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self._files()):
            try:
                image = decode_image(path)
            except SourceError as exc:
                log.warning("%s", exc)
                continue
            yield Frame(image, _now(), index, time.monotonic())


class VideoSource:
    """A video file; frame times are the start time plus the position in the video."""

    def __init__(self, path: Path, *, started_at: datetime | None = None) -> None:
        self.path = path
        self.name = path.name
        self.started_at = started_at

    def frames(self) -> Iterator[Frame]:
        cv2 = cv2_module()
        if not self.path.is_file() or self.path.stat().st_size == 0:
            log.warning("%s: video file is missing or empty, skipped", self.name)
            return
        capture = cv2.VideoCapture(str(self.path))
        try:
            if not capture.isOpened():
                log.warning(
                    "%s: not a readable video (corrupt or unknown codec), skipped", self.name
                )
                return
            fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
            start = self.started_at or _now()
            index = 0
            while True:
                ok, image = capture.read()
                if not ok or image is None:
                    break
                clock = index / fps if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                yield Frame(image, start + timedelta(seconds=clock), index, clock)
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


def cap_rate(frames: Iterator[Frame], max_fps: float) -> Iterator[Frame]:
    """At most ``max_fps`` frames per second of the source's clock (0: every frame)."""
    if max_fps <= 0:
        yield from frames
        return
    interval = 1.0 / max_fps
    slack = interval * 0.05  # frame clocks jitter; 29.97 fps capped to 10 must give 10
    next_at = float("-inf")
    for frame in frames:
        if frame.clock >= next_at - slack:
            next_at = max(next_at + interval, frame.clock + interval - slack)
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

    def moved(self, image: ImageArray) -> bool:
        if self.threshold <= 0:
            return True
        cv2 = cv2_module()
        small = cv2.cvtColor(
            cv2.resize(image, self.size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY
        )
        small = cv2.GaussianBlur(small, (3, 3), 0)
        if self._last is None:
            self._last = small
            return True
        changed = float((cv2.absdiff(small, self._last) > self.pixel_delta).mean())
        if changed >= self.threshold:
            self._last = small
            return True
        return False
