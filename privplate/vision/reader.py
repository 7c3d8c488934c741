"""Detector + recognizer: frames in, plate readings with alternates out.

Every crop of every plate of every frame given to one call goes to the OCR in a single batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privplate.vision.alternates import choose, k_best, slot_confidence
from privplate.vision.crops import DEFAULT_VARIANTS, CropVariant, make_crop
from privplate.vision.interfaces import Detector, Recognizer
from privplate.vision.priors import FormatPrior
from privplate.vision.types import Detection, ImageArray, PlateReading, SlotProbabilities


@dataclass(frozen=True)
class ReaderOptions:
    #: Crops read per plate; their per-slot probabilities are averaged.
    variants: tuple[CropVariant, ...] = DEFAULT_VARIANTS
    #: Extra margin around the detector's box (share of width, share of height).
    padding: tuple[float, float] = (0.0, 0.0)
    prior: FormatPrior | None = None
    #: Alternates kept per plate, and how probable they must be relative to the best reading.
    alternates: int = 5
    alternate_ratio: float = 0.05
    #: A prior may pick the best among readings within this ratio of the most probable one.
    prior_ratio: float = 0.2
    #: Plates whose OCR confidence is lower are dropped (a detector false positive reads badly).
    min_ocr_confidence: float = 0.0


def _average(parts: Sequence[SlotProbabilities]) -> SlotProbabilities:
    first = parts[0]
    mean = np.mean(np.stack([p.probs for p in parts]), axis=0).astype(np.float32)
    return SlotProbabilities(mean, first.alphabet, first.pad)


class PlateReader:
    def __init__(
        self, detector: Detector, recognizer: Recognizer, options: ReaderOptions | None = None
    ) -> None:
        self.detector = detector
        self.recognizer = recognizer
        self.options = options or ReaderOptions()

    def detect(self, frames: Sequence[ImageArray]) -> list[list[Detection]]:
        return [self.detector.detect(frame) for frame in frames]

    def read(self, frames: Sequence[ImageArray]) -> list[list[PlateReading]]:
        """Plates of each frame, in the detector's order (best score first)."""
        return self.recognize(frames, self.detect(frames))

    def recognize(
        self, frames: Sequence[ImageArray], detections: Sequence[Sequence[Detection]]
    ) -> list[list[PlateReading]]:
        opts = self.options
        variants = opts.variants or (CropVariant.PLAIN,)
        crops = [
            make_crop(frame, det.box, variant, opts.padding)
            for frame, dets in zip(frames, detections, strict=True)
            for det in dets
            for variant in variants
        ]
        outputs = self.recognizer.recognize(crops)
        results: list[list[PlateReading]] = []
        at = 0
        for dets in detections:
            readings: list[PlateReading] = []
            for det in dets:
                slots = _average(outputs[at : at + len(variants)])
                at += len(variants)
                reading = self._decode(det, slots)
                if reading is not None:
                    readings.append(reading)
            results.append(readings)
        return results

    def _decode(self, det: Detection, slots: SlotProbabilities) -> PlateReading | None:
        opts = self.options
        confidence = slot_confidence(slots)
        if confidence < opts.min_ocr_confidence:
            return None
        chosen = choose(
            k_best(slots),
            ratio=opts.alternate_ratio,
            limit=opts.alternates,
            prior_ratio=opts.prior_ratio,
            rescore=opts.prior.score if opts.prior is not None else None,
        )
        if chosen is None:
            return None
        best, alternates = chosen
        return PlateReading(det, best, alternates, confidence, slots)
