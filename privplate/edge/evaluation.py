"""`privplate edge eval`: how well the edge reads a labelled folder of photos.

Labels are held in memory only; the report holds aggregate figures, never a plate.

* exact accuracy: the image's labelled plate was read exactly (best reading of the detection
  that overlaps the labelled box, or of the most confident detection when there is no box);
* detection recall: a detection overlaps the labelled box (IoU >= 0.3), or any detection
  exists when there is no box;
* character error rate: edit distance between that reading (empty if none) and the label,
  over all labelled characters;
* hotlist recall: with every labelled plate on the hotlist, the share of images where the
  image's own plate alerts, from the best reading only and from best + alternates;
* false alert rate: share of all reads (every detection of every image) whose best reading
  or an alternate is on a hotlist of random plates that shares no plate with the labels;
  the near-miss rate uses a harder hotlist: plates one character away from a labelled one.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from privplate.edge.images import decode_image
from privplate.edge.labels import LabelledImage
from privplate.errors import SourceError
from privplate.vision.reader import PlateReader
from privplate.vision.types import Detection, PlateReading

log = logging.getLogger(__name__)
MATCH_IOU = 0.3
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = "0123456789"
# Shapes of common plate formats (L letter, D digit), so random plates look like plates.
_SHAPES = ("LLLDDDD", "DLLLDDD", "LLDDDD", "DDDLLL", "LLLDDD", "LLDDLLL", "DLLDDD", "LLLLDDD")


def random_hotlist(size: int, exclude: set[str], seed: int = 7) -> set[str]:
    rng = random.Random(seed)  # noqa: S311 - reproducible decoys, not secrets
    plates: set[str] = set()
    while len(plates) < size:
        shape = rng.choice(_SHAPES)
        plate = "".join(rng.choice(_LETTERS if s == "L" else _DIGITS) for s in shape)
        if plate not in exclude:
            plates.add(plate)
    return plates


def near_miss_hotlist(size: int, labels: set[str], seed: int = 11) -> set[str]:
    """Plates one character away from a labelled plate (and not labelled themselves): the
    hotlist on which an OCR slip or a loose alternate would raise a false alert."""
    rng = random.Random(seed)  # noqa: S311 - reproducible decoys, not secrets
    ordered = sorted(labels)
    plates: set[str] = set()
    for _ in range(size * 20):
        if len(plates) >= size:
            break
        plate = rng.choice(ordered)
        at = rng.randrange(len(plate))
        swapped = plate[:at] + rng.choice(_LETTERS + _DIGITS) + plate[at + 1 :]
        if swapped not in labels:
            plates.add(swapped)
    return plates


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@dataclass
class Tally:
    images: int = 0
    unreadable: int = 0
    detected: int = 0
    exact: int = 0
    label_chars: int = 0
    char_errors: int = 0
    alert_best: int = 0
    alert_alternates: int = 0
    reads: int = 0
    false_alerts: int = 0
    near_miss_alerts: int = 0
    near_miss_alerts_best: int = 0

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def report(self) -> dict[str, Any]:
        n = max(self.images, 1)
        return {
            "images": self.images,
            "unreadable_images": self.unreadable,
            "exact_accuracy": round(self.exact / n, 4),
            "detection_recall": round(self.detected / n, 4),
            "char_error_rate": round(self.char_errors / max(self.label_chars, 1), 4),
            "hotlist_recall_best": round(self.alert_best / n, 4),
            "hotlist_recall_alternates": round(self.alert_alternates / n, 4),
            "reads": self.reads,
            "false_alerts": self.false_alerts,
            "false_alert_rate": round(self.false_alerts / max(self.reads, 1), 6),
            "near_miss_false_alert_rate": round(self.near_miss_alerts / max(self.reads, 1), 6),
            "near_miss_false_alert_rate_best": round(
                self.near_miss_alerts_best / max(self.reads, 1), 6
            ),
        }


def _match(item: LabelledImage, detections: Sequence[Detection]) -> int | None:
    if not detections:
        return None
    if item.box is None:
        return 0  # detections come best score first
    overlaps = [d.box.iou(item.box) for d in detections]
    best = max(range(len(detections)), key=overlaps.__getitem__)
    return best if overlaps[best] >= MATCH_IOU else None


def _score(
    item: LabelledImage,
    detections: Sequence[Detection],
    readings: Sequence[PlateReading],
    hotlist: set[str],
    decoys: set[str],
    near: set[str],
) -> Tally:
    tally = Tally(images=1, label_chars=len(item.plate), reads=len(readings))
    matched = _match(item, detections)
    by_detection = {id(r.detection): r for r in readings}
    reading = by_detection.get(id(detections[matched])) if matched is not None else None
    tally.detected = matched is not None
    text = reading.best.text if reading is not None else ""
    tally.exact = text == item.plate
    tally.char_errors = edit_distance(text, item.plate)
    if reading is not None:
        alternates = {a.text for a in reading.alternates}
        tally.alert_best = text == item.plate and text in hotlist
        tally.alert_alternates = item.plate in ({text} | alternates) & hotlist
    for r in readings:
        texts = {r.best.text} | {a.text for a in r.alternates}
        tally.false_alerts += bool(texts & decoys)
        tally.near_miss_alerts += bool(texts & near)
        tally.near_miss_alerts_best += r.best.text in near
    return tally


@dataclass(frozen=True)
class Variant:
    """One configuration to evaluate: a reader per region, and the detector threshold."""

    name: str
    reader_for: Callable[[str], PlateReader]
    min_detection_score: float


@dataclass
class Outcome:
    total: Tally = field(default_factory=Tally)
    regions: dict[str, Tally] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        out = self.total.report()
        out["per_region"] = {k: v.report() for k, v in sorted(self.regions.items())}
        return out


def evaluate(
    items: Sequence[LabelledImage],
    detect: Callable[[Any], list[Detection]],
    variants: Sequence[Variant],
    *,
    decoy_count: int = 10_000,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Outcome], dict[str, float]]:
    """Detect once per image (at the lowest threshold), then read under every variant."""
    hotlist = {i.plate for i in items}
    decoys = random_hotlist(decoy_count, hotlist)
    near = near_miss_hotlist(decoy_count, hotlist)
    outcomes = [Outcome() for _ in variants]
    timings = {"detect_seconds": 0.0, "read_seconds": 0.0, "frames": 0.0}
    for index, item in enumerate(items):
        try:
            frame = decode_image(item.path)
        except SourceError as exc:
            log.warning("%s", exc)
            for outcome in outcomes:
                _account(
                    outcome,
                    item.region,
                    Tally(
                        images=1,
                        unreadable=1,
                        label_chars=len(item.plate),
                        char_errors=len(item.plate),
                    ),
                )
            continue
        started = time.perf_counter()
        detections = detect(frame)
        timings["detect_seconds"] += time.perf_counter() - started
        timings["frames"] += 1
        for number, (variant, outcome) in enumerate(zip(variants, outcomes, strict=True)):
            kept = [d for d in detections if d.score >= variant.min_detection_score]
            started = time.perf_counter()
            readings = variant.reader_for(item.region).recognize([frame], [kept])[0]
            if number == 0:
                timings["read_seconds"] += time.perf_counter() - started
            _account(outcome, item.region, _score(item, kept, readings, hotlist, decoys, near))
        if progress is not None:
            progress(index + 1)
    return outcomes, timings


def _account(outcome: Outcome, region: str, tally: Tally) -> None:
    outcome.total.add(tally)
    outcome.regions.setdefault(region or "-", Tally()).add(tally)


def regions_of(items: Iterable[LabelledImage]) -> list[str]:
    return sorted({i.region for i in items})
