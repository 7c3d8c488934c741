"""One reading from every look at a car, made when its track closes; two ways to make it.

``Stacking`` (``edge.track_fusion = "stacked"``, the default): each look keeps its plate crops
(the reader's crop variants: plain, grey, wider, tighter); each variant's crops are registered
onto the best look's and averaged (privplate.vision.stacking), the stacked crops are read in
one OCR call and voted as a frame's are, and the read is the surer of that reading and the
best frame's. Noise,
JPEG blocks and blur that differ from frame to frame average out; what the frames share (the
plate's size, font, dirt) does not, and the best frame stays the fallback.

``SlotFusion`` (``"slots"``): the OCR gives each frame a table ``probs[slot, symbol]`` with
the characters left to right and padding at the end, so the frames of one plate line up slot
by slot. Each frame's table is weighted by how good a look it was (detector score x OCR
confidence x how large the plate was in the frame), and the tables of the looks nearly as good
as the best one (``gate``) are pooled slot by slot: a weighted mean of probabilities
(``"mean"``) or of log-probabilities (``"log"``, a product of experts), renormalised per slot,
and decoded once with the reader's format prior and alternates (``PlateReader.decode``). A
frame that read a different number of characters than the best frame has dropped or split a
character: every slot after the gap is shifted, so its table is left out.

Why stacking is the default (benchmarks/fusion.py's degraded video, cars approaching through
motion blur, noise and JPEG, both ways graded on the same tracks of one run): pooling the
tables read no more cars exactly than the best frame, because the frames of a car are misread
alike (of the cars no single frame read, pooling fixed almost none), while the stacked image
read cars no single frame had read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from privplate.vision.crops import CropVariant, make_crop
from privplate.vision.reader import average_tables
from privplate.vision.stacking import SAME_PLATE, correlation, plate_image, stack
from privplate.vision.types import Detection, ImageArray, PlateReading, SlotProbabilities

if TYPE_CHECKING:
    from privplate.settings import TrackFusion
    from privplate.vision.reader import PlateReader

#: "log": weighted mean of log-probabilities (product of experts); "mean": of probabilities.
Pooling = Literal["log", "mean"]
#: A plate this many pixels high or more is a full-quality look; smaller ones weigh less (the
#: OCR's input is 64 pixels high: a plate much smaller is upsampled from little detail).
FULL_HEIGHT = 32.0
#: Looks pooled: those weighing at least this share of the best look.
GATE = 0.7
#: Looks kept per track, the best by weight: a car waiting in view for minutes would otherwise
#: keep every frame's table in memory. With stacking a look holds four 128 x 64 crops (98 KiB),
#: so a track holds at most 1.6 MiB; averaging more than 16 looks cuts the noise by little more.
MAX_LOOKS = 16
_FLOOR = 1e-6

Decode = Callable[[Detection, SlotProbabilities], PlateReading | None]


def look_weight(reading: PlateReading) -> float:
    """How much one frame's reading counts: detector score x OCR confidence x plate size."""
    size = min(1.0, reading.detection.box.height / FULL_HEIGHT)
    return max(reading.confidence * size, 1e-9)


def reading_length(slots: SlotProbabilities) -> int:
    """Characters of the table's most probable reading (slots whose argmax is not padding)."""
    pad = slots.alphabet.index(slots.pad)
    return int(np.count_nonzero(slots.probs.argmax(axis=1) != pad))


@dataclass(frozen=True, eq=False)
class Look:
    """One frame's table of a track, its weight and the length of its reading; with stacking,
    the plate's crops (one per reader crop variant) at privplate.vision.stacking.STACK_SIZE."""

    slots: SlotProbabilities = field(repr=False)
    weight: float
    length: int
    images: tuple[ImageArray, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, reading: PlateReading, images: tuple[ImageArray, ...] = ()) -> Look:
        return cls(reading.slots, look_weight(reading), reading_length(reading.slots), images)


def keep_best(looks: list[Look], limit: int = MAX_LOOKS, keep: Look | None = None) -> None:
    """Drop the lightest look but ``keep`` (the best frame's: the stack's reference) while there
    are more than ``limit`` (in place)."""
    while len(looks) > limit:
        looks.remove(min((look for look in looks if look is not keep), key=lambda x: x.weight))


def fuse(
    looks: Sequence[Look], *, pooling: Pooling = "mean", length: int | None = None
) -> SlotProbabilities:
    """The looks' tables pooled slot by slot, weighted; with ``length``, only the looks whose
    reading has that many characters (the others are shifted: see the module's docstring).
    The first look must qualify (it is the reference: give the best one first)."""
    if not looks:
        raise ValueError("fuse needs at least one look")
    first = looks[0].slots
    same = [
        look
        for look in looks
        if look.slots.probs.shape == first.probs.shape
        and look.slots.alphabet == first.alphabet
        and (length is None or look.length == length)
    ]
    if not same:
        raise ValueError("no look has the reference's length")
    weights = np.array([look.weight for look in same], dtype=np.float64)
    weights /= weights.sum()
    stack = np.stack([look.slots.probs.astype(np.float64) for look in same])
    if pooling == "log":
        logp = np.tensordot(weights, np.log(np.clip(stack, _FLOOR, 1.0)), axes=1)
        pooled = np.exp(logp - logp.max(axis=1, keepdims=True))
    else:
        pooled = np.tensordot(weights, stack, axes=1)
    pooled /= pooled.sum(axis=1, keepdims=True)
    return SlotProbabilities(pooled.astype(np.float32), first.alphabet, first.pad)


class Fusion(Protocol):
    """How the tracker keeps a frame's look at a car, and makes a closing track's read."""

    def look(self, reading: PlateReading, frame: ImageArray) -> Look: ...

    def same_plate(self, earlier: Look, later: Look) -> bool:
        """Whether two looks a moment apart show the same plate, whatever they read."""
        ...

    def read(self, looks: Sequence[Look], best: PlateReading) -> PlateReading: ...


@dataclass(frozen=True)
class SlotFusion:
    """Per-slot probabilities pooled (see the module): ``decode`` is the reader's
    (``PlateReader.decode``, so the format prior and alternates apply to the fused table)."""

    decode: Decode
    pooling: Pooling = "mean"
    gate: float = GATE

    def look(self, reading: PlateReading, frame: ImageArray) -> Look:  # noqa: ARG002
        return Look.of(reading)  # tables only: the frame is the Fusion protocol's, for Stacking

    def same_plate(self, earlier: Look, later: Look) -> bool:  # noqa: ARG002
        return False  # tables cannot tell: only resembling readings join a track

    def read(self, looks: Sequence[Look], best: PlateReading) -> PlateReading:
        """The fused reading, at the best frame's box (the evidence is the best frame); the
        best frame's own reading when no other look is good enough, or the fused table is
        no plate."""
        top = Look.of(best)
        pooled = [
            look
            for look in looks
            if look.slots is not best.slots
            and look.length == top.length
            and look.weight >= self.gate * top.weight
        ]
        if not pooled:
            return best
        fused = self.decode(best.detection, fuse([top, *pooled], pooling=self.pooling))
        return fused if fused is not None else best


@dataclass(frozen=True)
class Stacking:
    """The looks' crops stacked and read once (see the module)."""

    reader: PlateReader

    def look(self, reading: PlateReading, frame: ImageArray) -> Look:
        # The crops the reader reads a frame's plate from: its variants of the detector's box.
        opts = self.reader.options
        box = reading.detection.box
        variants = opts.variants or (CropVariant.PLAIN,)
        return Look.of(
            reading, tuple(plate_image(make_crop(frame, box, v, opts.padding)) for v in variants)
        )

    def same_plate(self, earlier: Look, later: Look) -> bool:
        """The two looks' first crops correlate, once aligned, as one plate's do."""
        if not earlier.images or not later.images:
            return False
        return correlation(earlier.images[0], later.images[0]) >= SAME_PLATE

    def read(self, looks: Sequence[Look], best: PlateReading) -> PlateReading:
        """The stack's reading when it is at least as sure as the best frame's, at the best
        frame's box (the evidence is the best frame); else the best frame's reading."""
        reference = next((look for look in looks if look.slots is best.slots), None)
        if reference is None or not reference.images:
            return best
        others = [
            look
            for look in looks
            if look is not reference and len(look.images) == len(reference.images)
        ]
        crops: list[ImageArray] = []
        stacked_any = False
        for k, image in enumerate(reference.images):
            stacked = stack(image, [look.images[k] for look in others]) if others else None
            stacked_any = stacked_any or stacked is not None
            crops.append(image if stacked is None else stacked)
        if not stacked_any:
            return best
        table = average_tables(self.reader.recognizer.recognize(crops))
        reading = self.reader.decode(best.detection, table)
        if reading is None or reading.ocr_confidence < best.ocr_confidence:
            return best
        return reading


def track_fusion(mode: TrackFusion, reader: PlateReader) -> Fusion | None:
    """The tracker's fusion for ``edge.track_fusion`` (None: each track's best frame)."""
    if mode == "stacked":
        return Stacking(reader)
    if mode == "slots":
        return SlotFusion(reader.decode)
    return None
