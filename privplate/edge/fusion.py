"""One reading from every look at a car: a track's per-slot probabilities fused over frames.

The OCR gives each frame a table ``probs[slot, symbol]`` with the characters left to right and
padding at the end, so the frames of one plate line up slot by slot. Each frame's table is
weighted by how good a look it was (detector score x OCR confidence x how large the plate was
in the frame), and the tables of the looks nearly as good as the best one (``gate``) are
pooled slot by slot: a weighted mean of probabilities (``"mean"``) or of log-probabilities
(``"log"``, a product of experts), renormalised per slot. A slot one blurred frame misread is
then outvoted by the frames that saw it, and the fused table is decoded once with the reader's
format prior and alternates (``PlateReader.decode``), as if it were one better frame.

A frame that read a different number of characters than the best frame has dropped or split
a character: every slot after the gap is shifted, so its table is left out rather than
averaged into the wrong slots.

Why these choices (benchmarks/fusion.py's degraded video, the cars approaching so their late
frames are much better than their early ones): pooling every frame lost cars to best-frame
(the many small, early looks outvote the few good ones, and more so by majority length than
by the best frame's); pooling only the looks within ``gate`` of the best gained a little; the
mean of probabilities did slightly better than the product of experts, which lets one
confidently wrong look veto a character. On the whole degraded video (330 cars) fused and
best-frame reads were equally often exact: the per-frame readings of a blurred car differ so
much that its frames split into several tracks, each with few looks to fuse. So
``edge.track_fusion`` defaults to "best_frame".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from privplate.vision.types import Detection, PlateReading, SlotProbabilities

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
#: keep every frame's table in memory.
MAX_LOOKS = 32
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
    """One frame's table of a track, its weight and the length of its reading."""

    slots: SlotProbabilities = field(repr=False)
    weight: float
    length: int

    @classmethod
    def of(cls, reading: PlateReading) -> Look:
        return cls(reading.slots, look_weight(reading), reading_length(reading.slots))


def keep_best(looks: list[Look], limit: int = MAX_LOOKS) -> None:
    """Drop the lightest look while there are more than ``limit`` (in place)."""
    while len(looks) > limit:
        looks.remove(min(looks, key=lambda look: look.weight))


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


@dataclass(frozen=True)
class Fusion:
    """How a closing track's read is made from its looks: ``decode`` is the reader's
    (``PlateReader.decode``, so the format prior and alternates apply to the fused table)."""

    decode: Decode
    pooling: Pooling = "mean"
    gate: float = GATE

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


def track_fusion(mode: TrackFusion, reader: PlateReader) -> Fusion | None:
    """The tracker's fusion for ``edge.track_fusion`` (None: each track's best frame)."""
    return Fusion(reader.decode) if mode == "fused" else None
