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


def test_all_plates_of_several_frames_go_to_the_ocr_in_one_call(reader) -> None:  # type: ignore[no-untyped-def]
    from privplate.edge.images import decode_image
    from privplate.vision.reader import PlateReader

    spy = CountingRecognizer(reader.recognizer)
    batched = PlateReader(reader.detector, spy, reader.options)
    frames = [decode_image(ENDTOEND / r["filename"]) for r in labelled_rows("us", 6)]
    results = batched.read(frames)
    plates = sum(len(r) for r in results)
    assert plates >= 4, "expected most of 6 plates read"
    assert len(spy.calls) == 1
    assert spy.calls[0] >= plates * len(reader.options.variants)
    for readings in results:
        for reading in readings:
            assert reading.slots.probs.shape == (9, 37)
            assert 0.0 < reading.confidence <= 1.0
            assert len(reading.alternates) <= reader.options.alternates
