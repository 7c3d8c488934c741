"""Rectangular inference (the YOLOv8 graph cut before its fixed-size head) and the zoomed-in
re-detection of unsure plates, on the real models and photos."""

from __future__ import annotations

import pytest

from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, needs_edge, needs_models

pytestmark = [needs_edge, needs_models]
onnx = pytest.importorskip("onnx")
DETECTOR = MODELS_DIR / "yolov8n-plate-640.onnx"


def test_the_cut_graph_computes_the_same_head_as_the_model_on_a_square_input() -> None:
    import numpy as np
    import onnxruntime as ort

    from privplate.edge.images import decode_image
    from privplate.vision.detector import letterbox
    from privplate.vision.rect import cut_head, decode_raw

    full = ort.InferenceSession(str(DETECTOR), providers=["CPUExecutionProvider"])
    cut = cut_head(DETECTOR.read_bytes(), 8400, 640)
    assert cut.strides == (8, 16, 32) and cut.reg_max == 16
    session = ort.InferenceSession(cut.model, providers=["CPUExecutionProvider"])
    tensor, _ = letterbox(decode_image(ENDTOEND / labelled_rows("us", 1)[0]["filename"]), 640)
    head = full.run(None, {"images": tensor})[0][0]
    corners, scores = decode_raw(
        session.run(list(cut.outputs), {"images": tensor}), cut.strides, cut.reg_max, 0.0
    )
    assert len(scores) == 8400
    cx, cy = (corners[:, 0] + corners[:, 2]) / 2, (corners[:, 1] + corners[:, 3]) / 2
    np.testing.assert_allclose(cx, head[0], atol=1e-2)
    np.testing.assert_allclose(cy, head[1], atol=1e-2)
    np.testing.assert_allclose(corners[:, 2] - corners[:, 0], head[2], atol=1e-2)
    np.testing.assert_allclose(scores, head[4], atol=1e-5)
    # Only anchors at or above the threshold are decoded.
    _, kept = decode_raw(
        session.run(list(cut.outputs), {"images": tensor}), cut.strides, cut.reg_max, 0.05
    )
    assert len(kept) == int((head[4] >= 0.05).sum())


def test_a_graph_without_a_yolov8_head_is_refused() -> None:
    from privplate.errors import ConfigError
    from privplate.vision.rect import cut_head

    with pytest.raises(ConfigError, match="rect_inference"):
        cut_head((MODELS_DIR / "cct_xs_v1_global.onnx").read_bytes(), 8400, 640)
    with pytest.raises(ConfigError, match="rect_inference"):
        cut_head(DETECTOR.read_bytes(), 3024, 640)  # anchors of another input size


def test_rect_letterbox_pads_only_to_a_multiple_of_32() -> None:
    import numpy as np

    from privplate.vision.detector import letterbox_rect

    frame = np.full((720, 1280, 3), 200, dtype=np.uint8)
    tensor, box = letterbox_rect(frame, 640)
    assert tensor.shape == (1, 3, 384, 640) and tensor.dtype == np.float32
    assert box.scale == pytest.approx(0.5) and (box.pad_x, box.pad_y) == (0.0, 12.0)
    assert tensor[0, 0, 0, 0] == pytest.approx(114 / 255)  # grey padding
    assert tensor[0, 0, 200, 320] == pytest.approx(200 / 255)
    portrait, _ = letterbox_rect(np.zeros((1632, 918, 3), dtype=np.uint8), 640)
    assert portrait.shape == (1, 3, 640, 384)


def test_rectangular_and_square_detectors_find_the_same_plates() -> None:
    from privplate.edge.images import decode_image
    from privplate.vision.detector import YoloPlateDetector
    from privplate.vision.types import Box

    rect = YoloPlateDetector(DETECTOR, confidence=0.05)
    square = YoloPlateDetector(DETECTOR, confidence=0.05, rect=False)
    assert rect.rect is not None and square.rect is None
    rows = labelled_rows("us", 8) + labelled_rows("eu", 8)
    compared = 0
    for row in rows:
        frame = decode_image(ENDTOEND / row["filename"])
        x, y, w, h = (float(row[k]) for k in "xywh")
        label = Box(x, y, x + w, y + h)
        sure = [d for d in square.detect(frame) if d.box.iou(label) >= 0.3 and d.score >= 0.25]
        found = rect.detect(frame)
        for d in sure:  # a plate the square input finds surely, the rectangular one finds too
            same = max(found, key=lambda e: e.box.iou(d.box))
            assert same.box.iou(d.box) >= 0.9, row["filename"]
            assert same.score == pytest.approx(d.score, abs=0.2), row["filename"]
        compared += len(sure)
    assert compared >= 12


def test_rect_inference_is_a_setting_and_needs_the_registered_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from privplate.vision.factory import load_reader

    on = load_reader(models_dir=MODELS_DIR)
    off = load_reader(models_dir=MODELS_DIR, rect_inference=False, refine_below=0.0)
    assert on.detector.rect is not None  # type: ignore[attr-defined]
    assert on.options.refine_below == pytest.approx(0.9)
    assert off.detector.rect is None and off.options.refine_below is None  # type: ignore[attr-defined]


def test_an_unsure_plate_is_found_again_zoomed_in() -> None:
    from privplate.edge.images import decode_image
    from privplate.vision.factory import load_reader
    from privplate.vision.reader import refined_box
    from privplate.vision.types import Box

    reader = load_reader(models_dir=MODELS_DIR)
    found = 0
    rows = labelled_rows("us", 10)
    for row in rows:
        frame = decode_image(ENDTOEND / row["filename"])
        x, y, w, h = (float(row[k]) for k in "xywh")
        label = Box(x, y, x + w, y + h)
        box = refined_box(reader.detector, frame, label, 320)
        found += box is not None and box.iou(label) >= 0.3
    assert found >= 8, f"only {found} of {len(rows)} plates found again"


def test_refining_never_lowers_a_plates_confidence() -> None:
    from privplate.edge.images import decode_image
    from privplate.vision.factory import load_reader, with_options

    reader = load_reader(models_dir=MODELS_DIR, min_ocr_confidence=0.0)
    plain = with_options(reader, refine_below=None)
    always = with_options(reader, refine_below=1.0)
    frames = [decode_image(ENDTOEND / r["filename"]) for r in labelled_rows("us", 6)]
    detections = reader.detect(frames)
    for a, b in zip(
        plain.recognize(frames, detections), always.recognize(frames, detections), strict=True
    ):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert y.confidence >= x.confidence - 1e-6
            assert y.detection is x.detection  # the detector's box stays the reading's
