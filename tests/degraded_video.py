"""A video of the shared photos in which every single frame is hard to read: each car drives
up to the camera over ``hold`` frames (its scale growing frame to frame) through motion blur of
random length and angle, sensor noise and low-quality JPEG re-compression, all from one seeded
RNG. For benchmarks/fusion.py and tests/test_edge_fusion.py (importable without pytest).

Nothing here reads or writes a plate: the photos' labels stay with the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

WIDTH, HEIGHT = 1280, 720
FPS = 10.0


@dataclass(frozen=True)
class Degradation:
    """Ranges each frame's degradation is drawn from."""

    #: The car's scale relative to the frame-filling photo, first and last frame.
    scale: tuple[float, float] = (0.5, 0.9)
    #: Motion blur kernel length in pixels (0: none) and any angle.
    blur: tuple[int, int] = (3, 11)
    #: Standard deviation of Gaussian sensor noise, in grey levels.
    noise: tuple[float, float] = (4.0, 11.0)
    #: JPEG quality of the re-compression.
    jpeg: tuple[int, int] = (12, 35)


def motion_kernel(length: int, angle: float) -> npt.NDArray[np.float32]:
    """A line of ``length`` pixels at ``angle`` degrees, normalised: linear motion blur."""
    size = max(1, length)
    kernel = np.zeros((size, size), dtype=np.float32)
    kernel[size // 2, :] = 1.0
    turn = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, turn, (size, size)), dtype=np.float32)
    return kernel / max(float(kernel.sum()), 1e-6)


def degrade(
    image: npt.NDArray[np.uint8], rng: np.random.Generator, spec: Degradation
) -> npt.NDArray[np.uint8]:
    """One frame's blur, noise and JPEG round trip."""
    length = int(rng.integers(spec.blur[0], spec.blur[1] + 1))
    if length > 1:
        kernel = motion_kernel(length, float(rng.uniform(0, 180)))
        image = np.asarray(cv2.filter2D(image, -1, kernel), dtype=np.uint8)
    noisy = image + rng.normal(0, rng.uniform(*spec.noise), image.shape)
    image = np.clip(noisy, 0, 255).astype(np.uint8)
    quality = int(rng.integers(spec.jpeg[0], spec.jpeg[1] + 1))
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG re-compression failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("JPEG re-compression failed")
    return np.asarray(decoded, dtype=np.uint8)


def make_degraded_video(
    path: Path,
    photos: Sequence[Path],
    hold: int,
    *,
    seed: int = 16,
    spec: Degradation | None = None,
) -> int:
    """Write ``photos`` as cars approaching the camera, ``hold`` frames each, to ``path``
    (MJPG at FPS); the number of frames written. Car ``k`` is frames
    ``k * hold .. (k + 1) * hold - 1``."""
    spec = spec or Degradation()
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError("cannot open a video writer (OpenCV without MJPG?)")
    count = 0
    try:
        for photo_path in photos:
            photo = cv2.imread(str(photo_path))
            if photo is None:
                raise RuntimeError(f"cannot read photo {photo_path.name}")
            fit = min(WIDTH / photo.shape[1], HEIGHT / photo.shape[0])
            # Where the car ends up: somewhere in the frame, reached along a straight line.
            end_x, end_y = rng.uniform(0.3, 0.7), rng.uniform(0.4, 0.6)
            for step in range(hold):
                share = step / max(1, hold - 1)
                scale = fit * (spec.scale[0] + share * (spec.scale[1] - spec.scale[0]))
                w = max(8, round(photo.shape[1] * scale))
                h = max(8, round(photo.shape[0] * scale))
                car = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
                canvas = np.full((HEIGHT, WIDTH, 3), 50, dtype=np.uint8)
                cx = round((0.5 + share * (end_x - 0.5)) * WIDTH)
                cy = round((0.5 + share * (end_y - 0.5)) * HEIGHT)
                x0, y0 = max(0, cx - w // 2), max(0, cy - h // 2)
                x1, y1 = min(WIDTH, x0 + w), min(HEIGHT, y0 + h)
                canvas[y0:y1, x0:x1] = car[: y1 - y0, : x1 - x0]
                writer.write(degrade(canvas, rng, spec))
                count += 1
    finally:
        writer.release()
    return count
