"""Detector + recognizer: frames in, plate readings with alternates out.

Every crop of every plate of every frame given to one call goes to the OCR in a single batch.
A plate the OCR was unsure of can be looked for again in a zoomed-in region around it
(``refine_below``): the detector's box at frame scale is often a little off on a small plate,
and the box found at twice the resolution gives a crop the OCR reads better; the more
confident of the two readings is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from privplate.vision.alternates import choose, combine, k_best, slot_confidence
from privplate.vision.crops import DEFAULT_VARIANTS, CropVariant, crop, make_crop
from privplate.vision.formats import FormatSet
from privplate.vision.interfaces import Detector, Recognizer
from privplate.vision.priors import FormatPrior
from privplate.vision.types import Box, Detection, ImageArray, PlateReading, SlotProbabilities

#: The region searched around an unsure plate: its box grown by this share of its width and
#: height on each side.
REFINE_MARGIN = (0.5, 1.0)
#: A box found there is the same plate when it overlaps the first box this much.
REFINE_IOU = 0.3
#: A detection at least this sure is kept even when the zoomed-in look does not find it.
REFINE_KEEP = 0.25
#: A detection less sure than this is faint: most are not plates, and ``min_ocr_confidence``
#: drops them after every crop and the zoomed-in look were spent on them. So a faint one is
#: first read on its first crop alone, and only one that reaches ``min_ocr_confidence`` there
#: gets the other crops and the second look (real plates read far surer than that bar).
FAINT_SCORE = 0.25


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
    #: Plate formats the deployment declared: a matching reading is preferred among the
    #: plausible ones (within ``prior_ratio``), and matching alternates are listed first.
    formats: FormatSet | None = None
    #: Alternates kept per plate, and how probable they must be relative to the best reading.
    alternates: int = 5
    alternate_ratio: float = 0.05
    #: A prior may pick the best among readings within this ratio of the most probable one.
    prior_ratio: float = 0.2
    #: Plates whose OCR confidence is lower are dropped (a detector false positive reads badly).
    min_ocr_confidence: float = 0.0
    #: Look again, zoomed in, for plates whose OCR confidence is below this (None: never).
    #: Needs a detector that takes an input ``size`` (rectangular inference).
    refine_below: float | None = None
    #: Longest side of the detector's input for that region, in pixels.
    refine_side: int = 320


def average_tables(parts: Sequence[SlotProbabilities]) -> SlotProbabilities:
    """The slot-by-slot mean of several crops' tables (multi-crop voting)."""
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
        """Read every detected plate in at most two OCR calls. The first reads every crop of
        each plate, or only the first crop when ``vote_below`` is set or the detection is faint
        (FAINT_SCORE); the second reads the other crops of the plates the first crop left
        unsure (below ``vote_below``; a confident plate is not re-read) and of the faint ones
        that read at least ``min_ocr_confidence`` (the others are dropped there)."""
        opts = self.options
        variants = opts.variants or (CropVariant.PLAIN,)
        plates = [
            (k, frame, det)
            for k, (frame, dets) in enumerate(zip(frames, detections, strict=True))
            for det in dets
        ]
        screen = opts.min_ocr_confidence > 0
        faint = [screen and det.score < FAINT_SCORE for _, _, det in plates]
        firsts = [
            variants[:1] if opts.vote_below is not None or weak else variants for weak in faint
        ]
        outputs = self.recognizer.recognize(
            [
                make_crop(f, d.box, v, opts.padding)
                for (_, f, d), first in zip(plates, firsts, strict=True)
                for v in first
            ]
        )
        parts: list[list[SlotProbabilities]] = []
        at = 0
        for first in firsts:
            parts.append(outputs[at : at + len(first)])
            at += len(first)
        dropped = {
            i
            for i, part in enumerate(parts)
            if faint[i] and slot_confidence(part[0]) < opts.min_ocr_confidence
        }
        more = [
            i
            for i, part in enumerate(parts)
            if i not in dropped
            and len(part) < len(variants)
            and (
                opts.vote_below is None or float(part[0].probs.max(axis=1).min()) < opts.vote_below
            )
        ]
        rest = variants[1:]
        extra = (
            self.recognizer.recognize(
                [
                    make_crop(plates[i][1], plates[i][2].box, v, opts.padding)
                    for i in more
                    for v in rest
                ]
            )
            if more
            else []
        )
        for n, i in enumerate(more):
            parts[i] = [*parts[i], *extra[n * len(rest) : (n + 1) * len(rest)]]
        slots: list[SlotProbabilities | None] = [
            None if i in dropped else average_tables(part) for i, part in enumerate(parts)
        ]
        if opts.refine_below is not None and getattr(self.detector, "rect", None) is not None:
            self._refine(plates, slots, opts.refine_below)
        results: list[list[PlateReading]] = [[] for _ in frames]
        for (k, _, det), table in zip(plates, slots, strict=True):
            if table is None:
                continue
            reading = self.decode(det, table)
            if reading is not None:
                results[k].append(reading)
        return results

    def _refine(
        self,
        plates: Sequence[tuple[int, ImageArray, Detection]],
        slots: list[SlotProbabilities | None],
        below: float,
    ) -> None:
        """Replace the readings of unsure plates by a zoomed-in re-detection's, if surer; a
        faint detection (score below REFINE_KEEP) not found again zoomed in is dropped."""
        opts = self.options
        variants = opts.variants or (CropVariant.PLAIN,)
        found: list[tuple[int, Box]] = []
        for i, (_, frame, det) in enumerate(plates):
            table = slots[i]
            if table is None or slot_confidence(table) >= below:
                continue
            box = refined_box(self.detector, frame, det.box, opts.refine_side)
            if box is not None:
                found.append((i, box))
            elif det.score < REFINE_KEEP:
                slots[i] = None
        if not found:
            return
        outputs = self.recognizer.recognize(
            [make_crop(plates[i][1], box, v, opts.padding) for i, box in found for v in variants]
        )
        for n, (i, _) in enumerate(found):
            table = average_tables(outputs[n * len(variants) : (n + 1) * len(variants)])
            current = slots[i]
            if current is None or slot_confidence(table) > slot_confidence(current):
                slots[i] = table

    def decode(self, det: Detection, slots: SlotProbabilities) -> PlateReading | None:
        """The reading of one plate from its per-slot probabilities (a frame's, or a track's
        fused over frames), or None when the OCR finds no plate there."""
        opts = self.options
        confidence = slot_confidence(slots)
        if confidence < opts.min_ocr_confidence:
            return None
        candidates = k_best(slots)
        formats = opts.formats
        if formats is not None:
            # The beam may hold no reading of a declared format; the constrained decode adds
            # each format's most probable one, which then faces the same plausibility bound.
            seen = {c.text for c in candidates}
            extra = [c for c in formats.candidates(slots) if c.text not in seen]
            candidates = sorted([*candidates, *extra], key=lambda c: -c.probability)
        chosen = choose(
            candidates,
            ratio=opts.alternate_ratio,
            limit=opts.alternates,
            prior_ratio=opts.prior_ratio,
            rescore=combine(
                opts.prior.score if opts.prior is not None else None,
                formats.score if formats is not None else None,
            ),
            prefer=formats.matches if formats is not None else None,
        )
        if chosen is None:
            return None
        best, alternates = chosen
        return PlateReading(det, best, alternates, confidence, slots)


def refined_box(detector: Detector, frame: ImageArray, box: Box, side: int) -> Box | None:
    """The plate's box found again by ``detector`` in the region around ``box``, the region
    scaled so its longest side is ``side`` pixels; None when nothing overlapping is found."""
    mx, my = REFINE_MARGIN
    region = Box(
        box.x1 - mx * box.width,
        box.y1 - my * box.height,
        box.x2 + mx * box.width,
        box.y2 + my * box.height,
    )
    patch = crop(frame, region)
    ox, oy = max(0, round(region.x1)), max(0, round(region.y1))
    best: tuple[float, Box] | None = None
    for det in detector.detect(patch, side):  # type: ignore[call-arg]
        moved = Box(det.box.x1 + ox, det.box.y1 + oy, det.box.x2 + ox, det.box.y2 + oy)
        if moved.iou(box) >= REFINE_IOU and (best is None or det.score > best[0]):
            best = (det.score, moved)
    return best[1] if best is not None else None
