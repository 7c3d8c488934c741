"""The reader with the real shared models: accuracy on a sample, one OCR call per batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, needs_models

pytestmark = needs_models


class CountingRecognizer:
    """Delegates to the real recognizer and counts its calls (a spy, not a stand-in)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def recognize(self, crops: Sequence[object]) -> list[object]:
        self.calls.append(len(crops))
        return self.inner.recognize(crops)  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(scope="module")
def reader():  # type: ignore[no-untyped-def]
    from privplate.settings import load_settings
    from privplate.vision.factory import build_reader

    settings = load_settings(Path("/nonexistent-privplate-home"), models_dir=MODELS_DIR)
    return build_reader(settings)


def test_reads_most_sample_plates_exactly(reader) -> None:  # type: ignore[no-untyped-def]
    from privplate.edge.images import decode_image
    from privplate.edge.labels import compare_form

    rows = labelled_rows("eu", 15) + labelled_rows("us", 15)
    frames = [decode_image(ENDTOEND / r["filename"]) for r in rows]
    exact = 0
    for row, readings in zip(rows, reader.read(frames), strict=True):
        exact += any(r.best.text == compare_form(row["plate"]) for r in readings)
    assert exact >= 24, f"{exact} of {len(rows)} read exactly"


def test_all_plates_of_several_frames_go_to_the_ocr_together(reader) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from privplate.edge.images import decode_image
    from privplate.vision.reader import PlateReader

    frames = [decode_image(ENDTOEND / r["filename"]) for r in labelled_rows("us", 6)]
    detections = reader.detect(frames)
    plates = sum(len(d) for d in detections)
    assert plates >= 5, "expected most of 6 plates detected"
    # Every crop of every plate of every frame in one call (no confidence floor: no faint
    # detection is screened on its first crop first).
    spy = CountingRecognizer(reader.recognizer)
    always = PlateReader(
        reader.detector, spy, replace(reader.options, vote_below=None, min_ocr_confidence=0.0)
    )
    results = always.recognize(frames, detections)
    assert spy.calls == [plates * len(reader.options.variants)]
    # Adaptive voting: first crops of all plates in one call, other crops of unsure plates in
    # at most one more.
    spy.calls.clear()
    adaptive = PlateReader(reader.detector, spy, replace(reader.options, vote_below=0.9))
    adaptive.recognize(frames, detections)
    assert spy.calls[0] == plates and len(spy.calls) <= 2
    assert sum(spy.calls[1:]) % (len(reader.options.variants) - 1) == 0
    for readings in results:
        for reading in readings:
            assert reading.slots.probs.shape == (9, 37)
            assert 0.0 < reading.confidence <= 1.0
            assert len(reading.alternates) <= reader.options.alternates


class CountingDetector:
    """Delegates to the real detector and counts the zoomed-in looks (a spy)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.rect = inner.rect  # type: ignore[attr-defined]
        self.looks = 0

    def detect(self, frame: object, size: int | None = None) -> list[object]:
        self.looks += 1
        return self.inner.detect(frame, size)  # type: ignore[attr-defined, no-any-return]


def test_a_faint_false_positive_is_dropped_after_its_first_crop(reader) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from privplate.edge.images import decode_image
    from privplate.edge.labels import compare_form
    from privplate.vision.reader import FAINT_SCORE, PlateReader
    from privplate.vision.types import Box, Detection

    row = labelled_rows("eu", 1)[0]
    frame = decode_image(ENDTOEND / row["filename"]).copy()
    x, y, w, h = (float(row[k]) for k in "xywh")
    # A patch of noise far from the plate: what a faint false detection looks like to the OCR.
    frame[:40, :120] = np.random.default_rng(3).integers(0, 256, (40, 120, 3), dtype=np.uint8)
    plate = Detection(Box(x, y, x + w, y + h), FAINT_SCORE / 2)  # faint, but a real plate
    noise = Detection(Box(0, 0, 120, 40), FAINT_SCORE / 2)
    ocr = CountingRecognizer(reader.recognizer)
    detector = CountingDetector(reader.detector)
    screened = PlateReader(detector, ocr, reader.options)
    (readings,) = screened.recognize([frame], [[plate, noise]])
    variants = len(reader.options.variants)
    # First crops of both; the other crops of the real plate only; no second look at the noise.
    assert ocr.calls == [2, variants - 1]
    assert [r.detection for r in readings] == [plate]
    assert readings[0].best.text == compare_form(row["plate"])
    assert detector.looks <= 1  # at most the plate's own, were it read unsure
    # A detection that is not faint is read on every crop at once, as before.
    ocr.calls.clear()
    sure = Detection(plate.box, FAINT_SCORE)
    (readings,) = screened.recognize([frame], [[sure]])
    assert ocr.calls == [variants]
    assert [r.best.text for r in readings] == [compare_form(row["plate"])]
