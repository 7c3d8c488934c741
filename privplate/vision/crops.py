"""Plate crops for the OCR: padding, grey copies and deskewing.

Several slightly different crops of one plate are read in the same batch and their per-slot
probabilities averaged ("multi-crop voting"): a crop that clips a character or catches a frame
edge is outvoted by the others.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np

from privplate.vision._deps import cv2_module
from privplate.vision.types import Box, ImageArray


class CropVariant(StrEnum):
    PLAIN = "plain"  # the detector's box
    GRAY = "gray"  # the same box without colour (colour casts and tinted plates)
    WIDE = "wide"  # a little wider and taller
    TIGHT = "tight"  # a little tighter
    DESKEW = "deskew"  # rotated so the plate's long edges are horizontal


DEFAULT_VARIANTS: tuple[CropVariant, ...] = (
    CropVariant.PLAIN,
    CropVariant.GRAY,
    CropVariant.WIDE,
    CropVariant.TIGHT,
)
_WIDE = (0.03, 0.05)
_TIGHT = (-0.02, -0.04)
MAX_SKEW_DEGREES = 20.0
MIN_SKEW_DEGREES = 2.0


def crop(frame: ImageArray, box: Box, pad_x: float = 0.0, pad_y: float = 0.0) -> ImageArray:
    """The box grown by ``pad_x`` of its width and ``pad_y`` of its height on each side."""
    height, width = frame.shape[:2]
    dx, dy = box.width * pad_x, box.height * pad_y
    x1 = min(max(0, round(box.x1 - dx)), width - 1)
    y1 = min(max(0, round(box.y1 - dy)), height - 1)
    x2 = max(min(width, round(box.x2 + dx)), x1 + 1)
    y2 = max(min(height, round(box.y2 + dy)), y1 + 1)
    return frame[y1:y2, x1:x2]


def _gray(image: ImageArray) -> ImageArray:
    cv2 = cv2_module()
    out: ImageArray = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return out


def skew_degrees(image: ImageArray) -> float:
    """Dominant angle of long, nearly horizontal edges (plate borders, character baselines)."""
    cv2 = cv2_module()
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(gray, 50, 150)
    width = image.shape[1]
    lines = cv2.HoughLinesP(
        edges,
        1,
        np.pi / 180,
        threshold=max(10, width // 4),
        minLineLength=max(8, width // 3),
        maxLineGap=3,
    )
    if lines is None:
        return 0.0
    angles: list[float] = []
    weights: list[float] = []
    for x1, y1, x2, y2 in lines.reshape(-1, 4):
        angle = math.degrees(math.atan2(float(y2 - y1), float(x2 - x1)))
        if abs(angle) <= MAX_SKEW_DEGREES:
            angles.append(angle)
            weights.append(math.hypot(float(x2 - x1), float(y2 - y1)))
    return float(np.average(angles, weights=weights)) if angles else 0.0


def deskewed(frame: ImageArray, box: Box) -> ImageArray:
    cv2 = cv2_module()
    angle = skew_degrees(crop(frame, box, 0.1, 0.2))
    if abs(angle) < MIN_SKEW_DEGREES:
        return crop(frame, box)
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    # Rotate only the neighbourhood of the plate, not the whole frame.
    margin = box.width
    region = Box(cx - margin, cy - margin, cx + margin, cy + margin)
    patch = crop(frame, region)
    ox, oy = max(0, round(region.x1)), max(0, round(region.y1))
    matrix = cv2.getRotationMatrix2D((cx - ox, cy - oy), angle, 1.0)
    rotated = cv2.warpAffine(
        patch,
        matrix,
        (patch.shape[1], patch.shape[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    # A tilted plate's axis-aligned box is taller than the plate: shrink it after rotating.
    height = max(box.height - abs(math.sin(math.radians(angle))) * box.width, box.height * 0.6)
    upright = Box(
        cx - ox - box.width / 2, cy - oy - height / 2, cx - ox + box.width / 2, cy - oy + height / 2
    )
    return crop(rotated, upright)


def make_crop(
    frame: ImageArray, box: Box, variant: CropVariant, padding: tuple[float, float]
) -> ImageArray:
    px, py = padding
    if variant is CropVariant.PLAIN:
        return crop(frame, box, px, py)
    if variant is CropVariant.GRAY:
        return _gray(crop(frame, box, px, py))
    if variant is CropVariant.WIDE:
        return crop(frame, box, px + _WIDE[0], py + _WIDE[1])
    if variant is CropVariant.TIGHT:
        return crop(frame, box, px + _TIGHT[0], py + _TIGHT[1])
    return deskewed(frame, box)
