"""The configurations `privplate edge eval --ablations` compares (same models, other options).

Each improvement is measured twice: removed from the full configuration, and added alone to
the plain pipeline (letterbox, NMS at 0.25, one tight crop, argmax OCR).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from privplate.edge.evaluation import Variant
from privplate.vision.crops import CropVariant
from privplate.vision.priors import FormatPrior
from privplate.vision.reader import PlateReader, ReaderOptions

PLAIN_THRESHOLD = 0.25
PriorFor = Callable[[str], FormatPrior | None]


def _variant(
    name: str,
    base: PlateReader,
    options: ReaderOptions,
    threshold: float,
    prior_for: PriorFor,
    use_prior: bool,
) -> Variant:
    readers: dict[str, PlateReader] = {}

    def reader_for(region: str) -> PlateReader:
        if region not in readers:
            prior = prior_for(region) if use_prior else None
            readers[region] = PlateReader(
                base.detector, base.recognizer, replace(options, prior=prior)
            )
        return readers[region]

    return Variant(name, reader_for, threshold)


def build_variants(
    base: PlateReader, threshold: float, prior_for: PriorFor, *, ablations: bool
) -> list[Variant]:
    full = base.options
    plain = replace(full, variants=(CropVariant.PLAIN,), min_ocr_confidence=0.0, padding=(0.0, 0.0))
    variants = [_variant("full", base, full, threshold, prior_for, True)]
    if not ablations:
        return variants
    pad = (0.05, 0.10)
    with_deskew = (*full.variants, CropVariant.DESKEW)
    table: list[tuple[str, ReaderOptions, float, bool]] = [
        ("plain", plain, PLAIN_THRESHOLD, False),
        ("plain + low detector threshold", plain, threshold, False),
        (
            "plain + multi-crop voting",
            replace(plain, variants=full.variants),
            PLAIN_THRESHOLD,
            False,
        ),
        ("plain + format prior", plain, PLAIN_THRESHOLD, True),
        ("plain + crop padding", replace(plain, padding=pad), PLAIN_THRESHOLD, False),
        ("plain + deskew", replace(plain, variants=(CropVariant.DESKEW,)), PLAIN_THRESHOLD, False),
        ("full - low detector threshold", full, PLAIN_THRESHOLD, True),
        ("full - multi-crop voting", replace(full, variants=(CropVariant.PLAIN,)), threshold, True),
        ("full, voting only below 0.9", replace(full, vote_below=0.9), threshold, True),
        ("full - format prior", full, threshold, False),
        ("full - OCR confidence filter", replace(full, min_ocr_confidence=0.0), threshold, True),
        ("full + crop padding", replace(full, padding=pad), threshold, True),
        ("full + deskew vote", replace(full, variants=with_deskew), threshold, True),
    ]
    if full.formats is not None:
        # The deployment's plate formats (edge.plate_formats / plate_patterns) are measured
        # like the prior: removed from the full configuration.
        table.append(("full - plate formats", replace(full, formats=None), threshold, True))
    variants.extend(_variant(n, base, o, t, prior_for, p) for n, o, t, p in table)
    return variants
