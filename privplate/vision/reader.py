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
    #: Read the other crops only of plates whose least sure slot is below this probability
    #: (None: every crop of every plate, always).
    vote_below: float | None = None
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
        """Read every detected plate: the first crop of all plates in one OCR call; then, when
        ``vote_below`` is set, the other crops of the plates the OCR was unsure of in a
        second call (a confident plate is not re-read)."""
        opts = self.options
        variants = opts.variants or (CropVariant.PLAIN,)
        plates = [
            (k, frame, det)
            for k, (frame, dets) in enumerate(zip(frames, detections, strict=True))
            for det in dets
        ]
        if opts.vote_below is None:
            first = variants
            rest: tuple[CropVariant, ...] = ()
        else:
            first, rest = variants[:1], variants[1:]
        outputs = self.recognizer.recognize(
            [make_crop(f, d.box, v, opts.padding) for _, f, d in plates for v in first]
        )
        parts = [outputs[i * len(first) : (i + 1) * len(first)] for i in range(len(plates))]
        if rest and opts.vote_below is not None:
            unsure = [
                i
                for i, p in enumerate(parts)
                if float(p[0].probs.max(axis=1).min()) < opts.vote_below
            ]
            extra = self.recognizer.recognize(
                [
                    make_crop(plates[i][1], plates[i][2].box, v, opts.padding)
                    for i in unsure
                    for v in rest
                ]
                if unsure
                else []
            )
            for n, i in enumerate(unsure):
                parts[i] = [*parts[i], *extra[n * len(rest) : (n + 1) * len(rest)]]
        results: list[list[PlateReading]] = [[] for _ in frames]
        for (k, _, det), part in zip(plates, parts, strict=True):
            reading = self._decode(det, _average(part))
            if reading is not None:
                results[k].append(reading)
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
