"""What recognition produces: frozen values that carry probabilities, never leave memory.

Plate text lives only in these objects; nothing here is ever logged or written (their
``repr`` hides the text so a stray log line or traceback cannot leak it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in frame pixels."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float


@dataclass(frozen=True, eq=False)
class SlotProbabilities:
    """One OCR output: ``probs[slot, symbol]`` over ``alphabet`` (``pad`` marks an empty slot)."""

    probs: FloatArray
    alphabet: str
    pad: str

    def __repr__(self) -> str:
        return f"SlotProbabilities(slots={self.probs.shape[0]}, symbols={self.probs.shape[1]})"


@dataclass(frozen=True)
class Candidate:
    """A reading and its joint probability under the OCR (and prior, when one is used)."""

    text: str = field(repr=False)
    probability: float


@dataclass(frozen=True)
class PlateReading:
    """A plate found in a frame: best reading, alternates, and where it was."""

    detection: Detection
    best: Candidate
    alternates: tuple[Candidate, ...]
    #: Mean over slots of the best reading's per-slot probability (0..1).
    ocr_confidence: float
    slots: SlotProbabilities = field(repr=False)

    @property
    def confidence(self) -> float:
        """Detector score times OCR confidence: what tracking and reads rank by."""
        return float(self.detection.score * self.ocr_confidence)
