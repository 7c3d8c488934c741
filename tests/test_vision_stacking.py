"""Stacking looks at a plate (privplate.vision.stacking): registration undoes the small warps
between frames, the average of aligned noisy looks is closer to the plate than any one look,
and a look of something else is left out. The images are drawn here (strokes and blocks, no
plate); reading real plates stacked is tests/test_edge_fusion.py's."""

from __future__ import annotations

from typing import Any

import pytest

np = pytest.importorskip("numpy")
cv2 = pytest.importorskip("cv2")

from privplate.vision.stacking import (  # noqa: E402
    STACK_SIZE,
    plate_image,
    register,
    stack,
)


def drawing() -> Any:
    """A plate-like 128 x 64 BGR image: dark strokes and blocks on a light ground."""
    width, height = STACK_SIZE
    image = np.full((height, width, 3), 215, dtype=np.uint8)
    cv2.rectangle(image, (3, 3), (width - 4, height - 4), (40, 40, 40), 2)
    for k, x in enumerate(range(12, width - 16, 16)):
        top = 14 + (k % 3) * 3
        cv2.line(image, (x, top), (x + 6 + k % 4, height - 14), (30, 30, 30), 3)
        cv2.circle(image, (x + 4, 20 + (k * 7) % 24), 3 + k % 3, (60, 60, 60), -1)
    return image


def warped(image: Any, dx: float, dy: float, scale: float, angle: float) -> Any:
    width, height = STACK_SIZE
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    matrix[:, 2] += (dx, dy)
    out: Any = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    return out


def error(a: Any, b: Any) -> float:
    """Root mean square difference, inside a margin (warps move the borders)."""
    diff = a.astype(np.float64)[6:-6, 6:-6] - b.astype(np.float64)[6:-6, 6:-6]
    return float(np.sqrt(np.mean(diff**2)))


def test_registration_undoes_a_shift_a_zoom_and_a_tilt() -> None:
    plate = drawing()
    moved = warped(plate, 3.5, -2.0, 1.05, 2.0)
    aligned = register(plate, moved)
    assert aligned is not None
    assert error(plate, moved) > 30  # what registration has to undo
    assert error(plate, aligned) < 0.3 * error(plate, moved)


def test_a_stack_of_noisy_looks_is_closer_to_the_plate_than_one_look() -> None:
    rng = np.random.default_rng(7)
    plate = drawing()
    moves = [
        (*rng.uniform(-2, 2, 2), rng.uniform(0.97, 1.03), rng.uniform(-2, 2)) for _ in range(9)
    ]
    clean = [warped(plate, dx, dy, scale, angle) for dx, dy, scale, angle in moves]
    looks = [np.clip(c + rng.normal(0, 30, c.shape), 0, 255).astype(np.uint8) for c in clean]
    stacked = stack(looks[0], looks[1:])
    assert stacked is not None and stacked.dtype == np.uint8 and stacked.shape == plate.shape
    truth = clean[0]  # the stack is made in the first look's frame
    one = error(truth, looks[0])
    # Nine looks: the noise falls by about three, less what interpolation blurs.
    assert error(truth, stacked) < 0.5 * one
    fewer = stack(looks[0], looks[1:3])
    assert fewer is not None and error(truth, stacked) < error(truth, fewer) < one


def test_a_look_of_something_else_is_left_out() -> None:
    plate = drawing()
    flat = np.full_like(plate, 128)
    rng = np.random.default_rng(3)
    other = rng.integers(0, 256, plate.shape, dtype=np.uint8)
    assert register(plate, flat) is None
    assert register(plate, other) is None
    assert stack(plate, [flat, other]) is None  # nothing to stack: the caller keeps its look
    shifted = warped(plate, 1.0, 0.5, 1.0, 0.0)
    same = stack(plate, [flat, shifted])  # the flat look left out, the shifted one aligned
    assert same is not None and error(plate, same) < 0.5 * error(plate, shifted)


def test_a_crop_of_any_size_is_brought_to_the_stack_size() -> None:
    for shape in ((20, 70, 3), (64, 128, 3), (150, 400, 3)):
        image = plate_image(np.zeros(shape, dtype=np.uint8))
        assert image.shape == (STACK_SIZE[1], STACK_SIZE[0], 3)
