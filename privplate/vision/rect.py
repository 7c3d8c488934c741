"""Rectangular inference for YOLOv8 detectors exported with a fixed square input.

A 1280 x 720 camera frame letterboxed into 640 x 640 is 44% grey padding, and the detector
spends 44% of its time on it. The network itself is fully convolutional: only the export's
last layers (distribution focal loss decoding against an anchor grid baked in for 640 x 640)
fix the input size. So the graph is cut in memory just before those layers, its input made
``[1, 3, height, width]``, and the cut-off head is computed here on the three raw feature
maps: the frame goes in at the same scale as before, padded only up to a multiple of the
largest stride (640 x 384 for a 16:9 frame). Same weights, same file (its sha256 verified as
usual), same boxes on a square input; nothing is written to disk.

Needs the ``onnx`` package (in the edge extra) to read and cut the graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from privplate.errors import ConfigError
from privplate.vision._deps import cv2_module
from privplate.vision.types import FloatArray, ImageArray

STRIDES = (8, 16, 32)
PAD_GREY = 114


@dataclass(frozen=True)
class CutModel:
    """The serialized graph without its fixed-size head, and how to finish it."""

    model: bytes
    #: Output names in pairs (box distribution, class logits), one pair per stride.
    outputs: tuple[str, ...]
    strides: tuple[int, ...]
    #: Bins of the box distribution per side (16 for YOLOv8).
    reg_max: int


def _onnx() -> object:
    try:
        import onnx  # noqa: PLC0415 - optional, only to cut the graph
    except ModuleNotFoundError:
        raise ConfigError(
            "the onnx package is not installed (rectangular inference needs it); install the "
            "edge extra: pip install 'privplate[edge]', or set edge.rect_inference = false"
        ) from None
    return onnx


def cut_head(model: bytes, anchors: int, size: int) -> CutModel:
    """The YOLOv8 graph in ``model`` cut before its anchor decoding, with a free input size.

    ``anchors`` and ``size`` are the declared output anchors and square input side: the cut
    is refused unless the three strides' grids add up to exactly those anchors.
    """
    onnx: object = _onnx()
    proto = onnx.load_from_string(model)  # type: ignore[attr-defined]
    graph = proto.graph
    producers = {out: node for node in graph.node for out in node.output}
    weights = {w.name: tuple(w.dims) for w in graph.initializer}
    # The raw head: per stride a box Conv (4 * reg_max channels) and a class Conv, each
    # flattened by a Reshape into a Concat over the strides.
    heads: list[tuple[int, list[str]]] = []  # (channels, conv outputs by stride)
    for node in graph.node:
        if node.op_type != "Concat" or len(node.input) != len(STRIDES):
            continue
        reshapes = [producers.get(name) for name in node.input]
        convs = [producers.get(r.input[0]) if r is not None else None for r in reshapes]
        if all(r is not None and r.op_type == "Reshape" for r in reshapes) and all(
            c is not None and c.op_type == "Conv" for c in convs
        ):
            channels = weights.get(convs[0].input[1], (0,))[0]  # type: ignore[union-attr]
            heads.append((int(channels), [c.output[0] for c in convs]))  # type: ignore[union-attr]
    boxes = [outs for channels, outs in heads if channels > 4 and channels % 4 == 0]
    classes = [outs for channels, outs in heads if not (channels > 4 and channels % 4 == 0)]
    box_channels = next((c for c, _ in heads if c > 4 and c % 4 == 0), 0)
    if len(boxes) != 1 or len(classes) != 1 or sum((size // s) ** 2 for s in STRIDES) != anchors:
        raise ConfigError(
            "the detector graph is not a YOLOv8 raw head this version can cut for rectangular "
            "inference; set edge.rect_inference = false"
        )
    reg_max = box_channels // 4
    outputs: list[str] = []
    for box_out, cls_out in zip(boxes[0], classes[0], strict=True):
        outputs += [box_out, cls_out]
    cut = onnx.utils.Extractor(proto).extract_model(  # type: ignore[attr-defined]
        [graph.input[0].name], outputs
    )
    dims = cut.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in cut.graph.output:
        for dim in out.type.tensor_type.shape.dim[2:]:
            dim.dim_param = "grid"
    del cut.graph.value_info[:]  # shapes inferred for 640 x 640 would be wrong now
    return CutModel(cut.SerializeToString(), tuple(outputs), STRIDES, reg_max)


def rect_shape(height: int, width: int, size: int, stride: int = STRIDES[-1]) -> tuple[int, int]:
    """The input (height, width) a frame gets: scaled as into ``size`` x ``size``, padded
    only to a multiple of ``stride``."""
    scale = min(size / height, size / width)
    new_h, new_w = round(height * scale), round(width * scale)
    return (
        min(size, math.ceil(new_h / stride) * stride),
        min(size, math.ceil(new_w / stride) * stride),
    )


def to_blob(canvas: ImageArray) -> FloatArray:
    """BGR uint8 HWC -> RGB float32 NCHW in 0..1, in one pass."""
    cv2 = cv2_module()
    blob: FloatArray = cv2.dnn.blobFromImage(canvas, 1.0 / 255.0, swapRB=True)
    return blob


def decode_raw(
    parts: list[FloatArray], strides: tuple[int, ...], reg_max: int, confidence: float
) -> tuple[FloatArray, FloatArray]:
    """Corners (x1, y1, x2, y2 in input pixels) and scores of the anchors at or above
    ``confidence``, from the raw per-stride maps (what the cut-off head computed)."""
    bins = np.arange(reg_max, dtype=np.float32)
    corners: list[FloatArray] = []
    scores: list[FloatArray] = []
    for k, stride in enumerate(strides):
        box, logits = parts[2 * k][0], parts[2 * k + 1][0]
        grid_h, grid_w = box.shape[1:]
        best = np.clip(logits.reshape(logits.shape[0], -1).max(axis=0), -60.0, 60.0)
        score = 1.0 / (1.0 + np.exp(-best))
        keep = np.flatnonzero(score >= confidence)
        if not keep.size:
            continue
        dist = box.reshape(4, reg_max, grid_h * grid_w)[:, :, keep]
        dist = np.exp(dist - dist.max(axis=1, keepdims=True))
        sides = (dist * bins[None, :, None]).sum(axis=1) / dist.sum(axis=1)  # l, t, r, b
        ax = (keep % grid_w).astype(np.float32) + 0.5
        ay = (keep // grid_w).astype(np.float32) + 0.5
        corners.append(
            np.stack([ax - sides[0], ay - sides[1], ax + sides[2], ay + sides[3]], axis=1) * stride
        )
        scores.append(score[keep].astype(np.float32))
    if not scores:
        return np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.float32)
    return np.concatenate(corners).astype(np.float32), np.concatenate(scores)
