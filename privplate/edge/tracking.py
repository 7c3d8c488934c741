"""One read per car: plate readings of consecutive frames grouped into tracks.

A reading joins an open track when its box overlaps the track's last box and the texts are
alike, when the texts are nearly the same (the car moved further than one box), or, whatever
the texts, when its box overlaps the box the track had a moment ago (CONTINUITY_SECONDS) and
the tracker's fusion finds the two crops show the same plate (``Fusion.same_plate``): a
blurred frame can misread a plate beyond resemblance, and the next car stopping in the same
place is told apart by its plate's looks. A track closes when it has not been seen for
``window`` seconds. Its best frame (highest confidence) is the evidence; the read's text is
made from all its frames when the tracker has a ``Fusion`` (privplate.edge.fusion), else it is
the best frame's. Alerts, made while the track is open, are checked after each of its frames
on its best reading so far (not fused: an alert must go out at once).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from rapidfuzz.distance import Levenshtein

from privplate.edge.fusion import Fusion, Look, keep_best, track_fusion
from privplate.vision.types import Box, ImageArray, PlateReading

if TYPE_CHECKING:
    from privplate.settings import EdgeSettings
    from privplate.vision.reader import PlateReader

OVERLAP_IOU = 0.3
SIMILAR_WITH_OVERLAP = 0.5
SIMILAR_ALONE = 0.8
#: A reading whose box overlaps (OVERLAP_IOU) a track's last box seen at most this long ago,
#: and whose crop the fusion finds the same plate as the last one, joins it whatever it reads:
#: long enough to bridge a missed frame at 5 frames/s and more.
CONTINUITY_SECONDS = 0.35

log = logging.getLogger(__name__)


def similarity(a: str, b: str) -> float:
    """1 - the edit distance over the longer text's length (1.0 for two empty texts)."""
    # rapidfuzz's C++ rather than Python: on a folder of photos a reading is compared with
    # every track of the last few seconds, 36 text pairs each, and that was a tenth of a
    # photo's CPU time.
    return float(Levenshtein.normalized_similarity(a, b))


def _texts(reading: PlateReading) -> list[str]:
    return [reading.best.text, *(a.text for a in reading.alternates)]


@dataclass(eq=False)
class Track:
    best: PlateReading = field(repr=False)
    best_frame: ImageArray = field(repr=False)
    best_at: datetime
    first_at: datetime
    last_at: datetime
    last_box: Box
    sightings: int = 1
    #: Chosen when the car is first seen, so an alert and the later read share it.
    read_id: uuid.UUID = field(default_factory=uuid.uuid4)
    alerted: bool = False
    #: Sightings in a row whose best reading was the track's best text (1: just started).
    agreeing: int = 1
    #: Every frame's table, for fusion when the track closes (the best MAX_LOOKS).
    looks: list[Look] = field(default_factory=list, repr=False)
    #: The latest frame's look (``looks`` keeps the best ones, not the latest).
    last_look: Look | None = field(default=None, repr=False)
    #: The reading fused over the looks, set when the track closes (None: no fusion).
    fused: PlateReading | None = field(default=None, repr=False)
    #: The reading an edge alert was raised on: the read carries its texts too, so the
    #: server's match of the read agrees with the alert that named it.
    alerted_on: PlateReading | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.looks:
            self.looks.append(Look.of(self.best))
        if self.last_look is None:
            self.last_look = self.looks[-1]

    @property
    def final(self) -> PlateReading:
        """The reading the read is made of: fused once closed (with fusion), else the best."""
        return self.fused if self.fused is not None else self.best

    def text_similarity(self, reading: PlateReading) -> float:
        return max(similarity(a, b) for a in _texts(self.best) for b in _texts(reading))

    def add(
        self, reading: PlateReading, frame: ImageArray, at: datetime, look: Look | None = None
    ) -> None:
        self.sightings += 1
        self.agreeing = self.agreeing + 1 if reading.best.text == self.best.best.text else 1
        self.last_at = at
        self.last_box = reading.detection.box
        self.last_look = look or Look.of(reading)
        self.looks.append(self.last_look)
        if reading.confidence > self.best.confidence:
            self.best, self.best_frame, self.best_at = reading, frame, at
        best = next((x for x in self.looks if x.slots is self.best.slots), None)
        keep_best(self.looks, keep=best)


class Tracker:
    def __init__(self, window: float = 3.0, *, fusion: Fusion | None = None) -> None:
        self.window = timedelta(seconds=window)
        self.continuity = timedelta(seconds=CONTINUITY_SECONDS)
        #: How a closing track's read is fused over its frames (None: its best frame's).
        self.fusion = fusion
        self.open: list[Track] = []
        #: When the last frame was added (None before the first).
        self.latest: datetime | None = None

    @classmethod
    def configured(cls, edge: EdgeSettings, reader: PlateReader) -> Tracker:
        """The tracker ``edge run`` gives each camera (edge.track_seconds, edge.track_fusion)."""
        return cls(edge.track_seconds, fusion=track_fusion(edge.track_fusion, reader))

    def update(
        self,
        at: datetime,
        readings: list[PlateReading],
        frame: ImageArray,
        *,
        new_id: Callable[[int], uuid.UUID] | None = None,
    ) -> tuple[list[Track], list[Track]]:
        """Add one frame's readings; return (tracks that closed before ``at``, tracks seen).

        ``new_id(n)`` names the n-th track this frame starts (a frame that can be read again
        after a restart gives its cars the same read ids); else read ids are random."""
        closed = self.expire(at)
        self.latest = at
        taken: set[int] = set()
        seen: list[Track] = []
        started = 0
        for reading in sorted(readings, key=lambda r: -r.confidence):
            look = self.fusion.look(reading, frame) if self.fusion is not None else None
            track = self._match(reading, look, taken, at)
            if track is None:
                box = reading.detection.box
                looks = [look] if look is not None else []
                if new_id is None:
                    track = Track(reading, frame, at, at, at, box, looks=looks)
                else:
                    track = Track(
                        reading, frame, at, at, at, box, read_id=new_id(started), looks=looks
                    )
                started += 1
                self.open.append(track)
            else:
                track.add(reading, frame, at, look)
            taken.add(id(track))
            seen.append(track)
        return closed, seen

    def _match(
        self, reading: PlateReading, look: Look | None, taken: set[int], at: datetime
    ) -> Track | None:
        best: tuple[float, Track] | None = None
        for track in self.open:
            if id(track) in taken:
                continue  # two plates of one frame are two cars
            alike = track.text_similarity(reading)
            overlap = track.last_box.iou(reading.detection.box)
            near = overlap >= OVERLAP_IOU and (
                alike >= SIMILAR_WITH_OVERLAP or self._continues(track, look, at)
            )
            if near or alike >= SIMILAR_ALONE:
                score = alike + overlap
                if best is None or score > best[0]:
                    best = (score, track)
        return best[1] if best else None

    def _continues(self, track: Track, look: Look | None, at: datetime) -> bool:
        """Seen a moment ago, and the same plate to the fusion's eye (see the module)."""
        if self.fusion is None or look is None or track.last_look is None:
            return False
        recent = at - track.last_at <= self.continuity
        return recent and self.fusion.same_plate(track.last_look, look)

    def settled(self, confidence: float = 0.6, sightings: int = 3) -> bool:
        """True when the last frame with plates showed only cars read the same way in their
        last ``sightings`` sightings, at least ``confidence`` sure: another look would only
        confirm them (privplate.edge.sources.SettledGate thins detection while this holds).
        False after a frame without plates (a car that was missed must be looked for)."""
        tracks = list(self.open)  # read from the capture thread: a snapshot, never mutated
        latest = self.latest
        recent = [t for t in tracks if latest is not None and t.last_at == latest]
        return bool(recent) and all(
            t.agreeing >= sightings and t.best.confidence >= confidence for t in recent
        )

    def expire(self, now: datetime) -> list[Track]:
        closed = [t for t in self.open if now - t.last_at > self.window]
        self.open = [t for t in self.open if now - t.last_at <= self.window]
        return self._close(closed)

    def flush(self) -> list[Track]:
        closed, self.open = self.open, []
        return self._close(closed)

    def _close(self, tracks: list[Track]) -> list[Track]:
        if self.fusion is not None:
            for track in tracks:
                try:
                    track.fused = self.fusion.read(track.looks, track.best)
                except Exception as exc:  # any failure: the best frame stands
                    # These tracks have already left ``open``: a fusion that fails (the OCR
                    # session on a stacked crop) must not take them with it. The type only:
                    # nothing of the plate reaches the log.
                    log.warning(
                        "track fusion failed (%s); the read keeps its best frame's reading",
                        type(exc).__name__,
                    )
        return tracks
