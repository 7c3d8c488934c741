"""Several looks at one plate made into one better image: each look's crop is registered onto
the reference look's (an affine warp found by ECC, Evangelidis and Psarakis 2008, as
``cv2.findTransformECC``) and the aligned crops are averaged.

Why images and not the OCR's per-slot probabilities: in a video the frames of a car share its
plate's size, font and dirt, so the OCR tends to misread them the same way, and pooling its
readings mostly repeats the mistake. Sensor noise, JPEG blocks and motion blur in random
directions differ from frame to frame, and averaging N aligned crops cuts that noise by about
the square root of N before the OCR sees the plate (benchmarks/fusion.py measures both).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from privplate.vision._deps import cv2_module
from privplate.vision.types import ImageArray

#: Width and height every look's crop is brought to before registration. The OCR's input is
#: 128 x 64 (fast-plate-ocr's models): more pixels than that add nothing it would read.
STACK_SIZE = (128, 64)
#: A look whose registered crop correlates less than this with the reference is not the same
#: plate (or registration failed): it is left out of the stack.
MIN_CORRELATION = 0.5
#: Two looks a moment apart that correlate this much once aligned show the same plate, however
#: differently the OCR read them: on benchmarks/fusion.py's degraded video 98% of a car's
#: consecutive looks correlate more than 0.83 (1,591 pairs, blurred and noisy), while the
#: plates of two different cars in the same place one frame apart correlated 0.24 to 0.71 (the
#: 4 such pairs of that video and the first 80 cars of the plain one).
SAME_PLATE = 0.8
#: ECC's iterations and convergence threshold: a few iterations converge on looks a frame
#: apart; more cost time on looks that will not align anyway.
ECC_ITERATIONS = 50
ECC_EPSILON = 1e-4
#: Gaussian smoothing ECC applies to both images first (odd kernel size): the noise stacking
#: is meant to remove would otherwise steer the alignment.
ECC_SMOOTHING = 5


def plate_image(crop: ImageArray) -> ImageArray:
    """A look's crop at STACK_SIZE (BGR, uint8), as kept for stacking."""
    cv2 = cv2_module()
    image: ImageArray = cv2.resize(crop, STACK_SIZE, interpolation=cv2.INTER_AREA)
    return image


def _grey(image: ImageArray) -> np.ndarray:
    cv2 = cv2_module()
    grey: np.ndarray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return grey


def _align(reference: ImageArray, image: ImageArray) -> tuple[float, np.ndarray] | None:
    """ECC's correlation and the affine warp from ``reference`` to ``image``; None when it
    does not converge (a flat or unrelated crop)."""
    cv2 = cv2_module()
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, ECC_EPSILON)
    try:
        correlation, warp = cv2.findTransformECC(
            _grey(reference), _grey(image), warp, cv2.MOTION_AFFINE, criteria, None, ECC_SMOOTHING
        )
    except cv2.error:
        return None
    return float(correlation), warp


def correlation(reference: ImageArray, image: ImageArray) -> float:
    """How alike two looks are once aligned: ECC's correlation coefficient, 1 for the same
    image; -1 when they cannot be aligned."""
    aligned = _align(reference, image)
    return -1.0 if aligned is None else aligned[0]


def register(reference: ImageArray, image: ImageArray) -> np.ndarray | None:
    """``image`` warped onto ``reference`` (both STACK_SIZE), as float32; None when ECC does
    not converge or the aligned images correlate less than MIN_CORRELATION."""
    aligned = _align(reference, image)
    if aligned is None or aligned[0] < MIN_CORRELATION:
        return None
    cv2 = cv2_module()
    height, width = reference.shape[:2]
    warped: np.ndarray = cv2.warpAffine(
        image.astype(np.float32),
        aligned[1],
        (width, height),
        flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return warped


def stack(reference: ImageArray, others: Sequence[ImageArray]) -> ImageArray | None:
    """The mean of ``reference`` and every one of ``others`` that registers onto it (uint8);
    None when none does (one look: nothing to stack)."""
    aligned = [a for a in (register(reference, o) for o in others) if a is not None]
    if not aligned:
        return None
    mean = np.mean(np.stack([reference.astype(np.float32), *aligned]), axis=0)
    out: ImageArray = np.clip(np.rint(mean), 0, 255).astype(np.uint8)
    return out
