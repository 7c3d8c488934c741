"""Plate formats: exact accuracy on labelled photos without and with declared formats.

One run, the same detections and OCR tables for every configuration (each image is detected
and read once; only the decoding differs), so the figures compare like with like. A fair
deployment declares the formats it expects: on the US photos (many states) every ``us-*``
file, on the European photos every ``eu-*`` file; the ``us`` character prior is on for the US
photos in every configuration, as in ``privplate edge eval``'s default.

Only counts and rates are printed, never plate text. Needs the edge extra and the shared
models (``PRIVPLATE_MODELS_DIR``).

    PRIVPLATE_MODELS_DIR=../shared/models .venv/bin/python benchmarks/formats.py
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from privplate.edge.evaluation import Variant, evaluate
from privplate.edge.labels import load_labels
from privplate.vision.factory import load_format_prior, load_plate_formats, load_reader
from privplate.vision.formats import DEFAULT_WEIGHT, FormatSet
from privplate.vision.reader import PlateReader, ReaderOptions
from privplate.vision.types import Detection, ImageArray, PlateReading

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "plates_endtoend"


class _Redecoding(PlateReader):
    """Reads each frame once (under the base options) and decodes its tables again under
    this reader's options: configurations differ only in decoding."""

    def __init__(self, base: PlateReader, options: ReaderOptions, cache: dict[str, object]):
        super().__init__(base.detector, base.recognizer, options)
        self.base = base
        self.cache = cache

    def recognize(
        self, frames: Sequence[ImageArray], detections: Sequence[Sequence[Detection]]
    ) -> list[list[PlateReading]]:
        key = (id(frames[0]), tuple(id(d) for d in detections[0]))
        if self.cache.get("key") != key:
            self.cache["key"] = key
            self.cache["readings"] = self.base.recognize(frames, detections)
        first: list[list[PlateReading]] = self.cache["readings"]  # type: ignore[assignment]
        out: list[list[PlateReading]] = []
        for readings in first:
            decoded = [self.decode(r.detection, r.slots) for r in readings]
            out.append([r for r in decoded if r is not None])
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--weights", type=float, nargs="*", default=[1.0, DEFAULT_WEIGHT, 4.0, 8.0])
    args = parser.parse_args()
    items = load_labels(args.data / "labels.csv", args.data)
    base = load_reader()
    threshold = 0.05
    formats: dict[str, FormatSet | None] = {
        region: load_plate_formats([f"{region}-*"]) for region in ("us", "eu")
    }
    priors = {"us": load_format_prior("us")}
    cache: dict[str, object] = {}

    def variant(name: str, weight: float | None, constrained: bool = True) -> Variant:
        readers: dict[str, PlateReader] = {}

        def reader_for(region: str) -> PlateReader:
            if region not in readers:
                chosen = formats.get(region) if weight is not None else None
                if chosen is not None and weight is not None:
                    chosen = replace(chosen, weight=weight, constrained=constrained)
                options = replace(base.options, prior=priors.get(region), formats=chosen)
                readers[region] = _Redecoding(base, options, cache)
            return readers[region]

        return Variant(name, reader_for, threshold)

    variants = [variant("no formats", None)]
    variants += [variant(f"formats, weight {w:g}", w) for w in args.weights]
    variants.append(
        variant(f"formats, weight {DEFAULT_WEIGHT:g}, beam only", DEFAULT_WEIGHT, False)
    )
    outcomes, _ = evaluate(items, base.detector.detect, variants, decoy_count=10_000)
    print(f"{len(items)} photos, {args.data.name}; exact plates (count, rate)")
    for v, outcome in zip(variants, outcomes, strict=True):
        cells = [f"all {outcome.total.exact}/{outcome.total.images}"]
        cells += [f"{k} {t.exact}/{t.images}" for k, t in sorted(outcome.regions.items())]
        rate = outcome.total.exact / max(outcome.total.images, 1)
        t = outcome.total
        print(
            f"{v.name:30s} {rate:6.1%}  " + "  ".join(cells),
            f"  hotlist recall with alternates {t.alert_alternates}, near-miss alerts "
            f"{t.near_miss_alerts} of {t.reads} reads",
        )


if __name__ == "__main__":
    main()
