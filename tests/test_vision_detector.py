"""Detector: letterbox geometry, NMS, both output layouts, and the real 640 model on photos."""

from __future__ import annotations

import pytest

from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, needs_edge, needs_models

pytestmark = needs_edge


def test_letterbox_maps_input_pixels_back_to_the_frame() -> None:
    import numpy as np

    from privplate.vision.detector import letterbox

    frame = np.zeros((300, 600, 3), dtype=np.uint8)
    tensor, box = letterbox(frame, 640)
    assert tensor.shape == (1, 3, 640, 640)
    assert box.scale == pytest.approx(640 / 600)
    # Grey padding above and below the scaled frame.
    assert tensor[0, 0, 0, 0] == pytest.approx(114 / 255)
    x, y = box.to_frame(np.array([320.0]), np.array([320.0]))
    assert x[0] == pytest.approx(300, abs=1) and y[0] == pytest.approx(150, abs=1)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    import numpy as np

    from privplate.vision.detector import nms

    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.5, 0.9, 0.7], dtype=np.float32)
    assert nms(boxes, scores, 0.45) == [1, 2]


def test_both_layouts_decode_to_the_same_detection() -> None:
    import numpy as np

    from privplate.vision.detector import Letterbox, decode, detect_layout

    box = Letterbox(scale=0.5, pad_x=0.0, pad_y=80.0)
    # YOLOv8 raw head: [1, 5, anchors] = cx, cy, w, h, score; two anchors on one plate.
    raw = np.zeros((1, 5, 4), dtype=np.float32)
    raw[0, :, 0] = [100, 180, 40, 20, 0.9]
    raw[0, :, 1] = [101, 181, 40, 20, 0.8]
    raw[0, :, 2] = [300, 300, 40, 20, 0.01]  # below the threshold
    # open-image-models end-to-end: [N, 7] = batch, x1, y1, x2, y2, class, score.
    e2e = np.array([[0, 80, 170, 120, 190, 0, 0.9]], dtype=np.float32)
    assert detect_layout([1, 5, 8400]) == "yolov8"
    assert detect_layout(["N", 7]) == "end2end"
    a = decode(raw, "yolov8", box, (400, 1280), confidence=0.25, iou=0.45)
    b = decode(e2e, "end2end", box, (400, 1280), confidence=0.25, iou=0.45)
    assert len(a) == len(b) == 1
    assert (a[0].box.x1, a[0].box.y1, a[0].box.x2, a[0].box.y2) == pytest.approx(
        (160, 180, 240, 220)
    )
    assert a[0].box == b[0].box and a[0].score == pytest.approx(0.9)


@needs_models
def test_real_detector_finds_the_labelled_plates() -> None:
    from privplate.edge.images import decode_image
    from privplate.vision.detector import YoloPlateDetector
    from privplate.vision.types import Box

    detector = YoloPlateDetector(MODELS_DIR / "yolov8n-plate-640.onnx", confidence=0.05)
    rows = labelled_rows("eu", 10) + labelled_rows("us", 10)
    found = 0
    for row in rows:
        frame = decode_image(ENDTOEND / row["filename"])
        x, y, w, h = (float(row[k]) for k in "xywh")
        label = Box(x, y, x + w, y + h)
        found += any(d.box.iou(label) >= 0.3 for d in detector.detect(frame))
    assert found >= 18, f"only {found} of {len(rows)} labelled plates detected"


def test_unknown_output_layout_is_refused() -> None:
    from privplate.errors import ConfigError
    from privplate.vision.detector import detect_layout

    with pytest.raises(ConfigError, match="layout"):
        detect_layout([1, 1000])


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_onnxruntime_pool_threads_sleep_between_runs(threads: int) -> None:
    from privplate.vision._deps import session_options

    # A spinning pool thread would hold the core the OCR or the decoder runs on.
    options = session_options(threads)
    assert options.intra_op_num_threads == threads  # type: ignore[attr-defined]
    for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
        assert options.get_session_config_entry(key) == "0"  # type: ignore[attr-defined]
