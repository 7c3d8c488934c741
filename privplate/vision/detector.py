"""YOLO plate detector on onnxruntime: letterbox in, boxes in frame pixels out.

Two output layouts are understood:

* ``yolov8``: the raw head ``[1, 4 + classes, anchors]`` (cx, cy, w, h, class scores, in
  input pixels, before non-maximum suppression); we take the best class score and run NMS.
* ``end2end``: open-image-models' YOLOv9 exports with NMS inside the graph, ``[N, 7]`` rows of
  (batch index, x1, y1, x2, y2, class id, score) in input pixels.

A ``yolov8`` model runs rectangular by default (``rect``: privplate.vision.rect): the frame is
scaled as into the square input but padded only to a multiple of 32, so a 16:9 frame costs
640 x 384 instead of 640 x 640.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from privplate.errors import ConfigError
from privplate.vision._deps import cv2_module, onnxruntime_module, session_options
from privplate.vision.rect import CutModel, cut_head, decode_raw, rect_shape, to_blob
from privplate.vision.types import Box, Detection, FloatArray, ImageArray

log = logging.getLogger(__name__)
Layout = Literal["yolov8", "end2end"]
PAD_GREY = 114
RECT_INTERPOLATION = "INTER_LINEAR"


@dataclass(frozen=True)
class Letterbox:
    """How a frame was scaled and padded into the square model input."""

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        return (x - self.pad_x) / self.scale, (y - self.pad_y) / self.scale


def letterbox(frame: ImageArray, size: int) -> tuple[FloatArray, Letterbox]:
    """Scale ``frame`` (BGR) to fit ``size`` x ``size``, pad with grey, return NCHW RGB 0..1."""
    cv2 = cv2_module()
    height, width = frame.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = round(width * scale), round(height * scale)
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    canvas = np.full((size, size, 3), PAD_GREY, dtype=np.uint8)
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas[top : top + new_h, left : left + new_w] = resized
    tensor = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return np.ascontiguousarray(tensor), Letterbox(scale, float(left), float(top))


def letterbox_rect(frame: ImageArray, size: int) -> tuple[FloatArray, Letterbox]:
    """Like ``letterbox`` (same scale), but padded only to a multiple of 32 on each side."""
    cv2 = cv2_module()
    height, width = frame.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = round(width * scale), round(height * scale)
    in_h, in_w = rect_shape(height, width, size)
    pad_x, pad_y = (in_w - new_w) / 2, (in_h - new_h) / 2
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas = np.empty((in_h, in_w, 3), dtype=np.uint8)
    canvas[:top], canvas[top + new_h :] = PAD_GREY, PAD_GREY
    canvas[top : top + new_h, :left], canvas[top : top + new_h, left + new_w :] = (
        PAD_GREY,
        PAD_GREY,
    )
    if (new_w, new_h) == (width, height):
        canvas[top : top + new_h, left : left + new_w] = frame
    else:
        cv2.resize(
            frame,
            (new_w, new_h),
            dst=canvas[top : top + new_h, left : left + new_w],
            interpolation=getattr(cv2, RECT_INTERPOLATION),
        )
    return to_blob(canvas), Letterbox(scale, float(left), float(top))


def nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None
    )
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        ix = np.clip(
            np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]),
            0,
            None,
        )
        iy = np.clip(
            np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]),
            0,
            None,
        )
        inter = ix * iy
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou < iou_threshold]
    return keep


def detect_layout(shape: list[Any]) -> Layout:
    """Guess the layout from the model's declared output shape."""
    if len(shape) == 2 and shape[-1] == 7:
        return "end2end"
    if len(shape) == 3 and isinstance(shape[1], int) and shape[1] >= 5:
        return "yolov8"
    raise ConfigError(
        f"plate detector output shape {shape} is neither a YOLOv8 raw head [1, 4+classes, "
        "anchors] nor an end-to-end [N, 7] export; set the model's layout in the registry"
    )


class YoloPlateDetector:
    """A single-class (or best-class) YOLO plate detector."""

    def __init__(
        self,
        model_path: Path,
        *,
        confidence: float = 0.05,
        iou: float = 0.45,
        threads: int = 1,
        layout: Layout | None = None,
        rect: bool = True,
    ) -> None:
        ort = onnxruntime_module()
        self._ort = ort
        self._threads = threads
        self.session = ort.InferenceSession(
            str(model_path), session_options(threads), providers=["CPUExecutionProvider"]
        )
        model_input = self.session.get_inputs()[0]
        self.input_name: str = model_input.name
        size = model_input.shape[-1]
        if not isinstance(size, int) or model_input.shape[-2] != size:
            raise ConfigError(
                f"plate detector {model_path.name} must take a fixed square input; "
                f"it declares {model_input.shape}"
            )
        self.size: int = size
        self.layout: Layout = layout or detect_layout(self.session.get_outputs()[0].shape)
        self.confidence = confidence
        self.iou = iou
        #: The rectangular session and its head (None: square letterbox, the model as is).
        self.rect: tuple[Any, CutModel] | None = None
        if rect and self.layout == "yolov8":
            self._use_rect(model_path)

    def _use_rect(self, model_path: Path) -> None:
        anchors = self.session.get_outputs()[0].shape[-1]
        if not isinstance(anchors, int):
            return
        try:
            cut = cut_head(model_path.read_bytes(), anchors, self.size)
        except ConfigError as exc:
            log.info("%s: square inference (%s)", model_path.name, exc)
            return
        session = self._ort.InferenceSession(
            cut.model, session_options(self._threads), providers=["CPUExecutionProvider"]
        )
        self.rect = (session, cut)
        self.session = session  # the square one is not needed any more

    def detect(self, frame: ImageArray, size: int | None = None) -> list[Detection]:
        """Plates in ``frame``; ``size`` (rectangular inference only) is the longest input
        side the frame is scaled to instead of the model's (a small region, cheaply)."""
        if self.rect is not None:
            session, cut = self.rect
            tensor, box = letterbox_rect(frame, size or self.size)
            parts = session.run(list(cut.outputs), {self.input_name: tensor})
            corners, scores = decode_raw(
                [np.asarray(p, dtype=np.float32) for p in parts],
                cut.strides,
                cut.reg_max,
                self.confidence,
            )
            return place(corners, scores, box, frame.shape[:2], iou=self.iou)
        tensor, box = letterbox(frame, self.size)
        output = self.session.run(None, {self.input_name: tensor})[0]
        return decode(
            np.asarray(output, dtype=np.float32),
            self.layout,
            box,
            frame.shape[:2],
            confidence=self.confidence,
            iou=self.iou,
        )


def decode(
    output: FloatArray,
    layout: Layout,
    box: Letterbox,
    frame_size: tuple[int, ...],
    *,
    confidence: float,
    iou: float,
) -> list[Detection]:
    """Detections in frame pixels, best score first, from one image's model output."""
    if layout == "end2end":
        rows = output.reshape(-1, 7)
        corners, scores = rows[:, 1:5], rows[:, 6]
    else:
        head = output[0]
        scores = head[4:].max(axis=0)
        cx, cy, w, h = head[0], head[1], head[2], head[3]
        corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    keep_mask = scores >= confidence
    return place(corners[keep_mask], scores[keep_mask], box, frame_size, iou=iou)


def place(
    corners: FloatArray,
    scores: FloatArray,
    box: Letterbox,
    frame_size: tuple[int, ...],
    *,
    iou: float,
) -> list[Detection]:
    """Corners in input pixels -> detections in frame pixels after NMS, best score first."""
    if not len(scores):
        return []
    height, width = frame_size[0], frame_size[1]
    x1, y1 = box.to_frame(corners[:, 0], corners[:, 1])
    x2, y2 = box.to_frame(corners[:, 2], corners[:, 3])
    framed = np.stack(
        [
            np.clip(x1, 0, width),
            np.clip(y1, 0, height),
            np.clip(x2, 0, width),
            np.clip(y2, 0, height),
        ],
        axis=1,
    )
    # End-to-end graphs already suppressed overlaps; running NMS again is cheap and harmless.
    kept = nms(framed, scores, iou)
    return [
        Detection(Box(*(float(v) for v in framed[i])), float(scores[i]))
        for i in kept
        if framed[i, 2] - framed[i, 0] >= 2 and framed[i, 3] - framed[i, 1] >= 2
    ]
