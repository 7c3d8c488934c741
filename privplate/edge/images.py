"""Reading still images safely: a bad file gives a reason, never a crash or a half image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from privplate.errors import SourceError
from privplate.vision._deps import cv2_module
from privplate.vision.types import ImageArray

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MAX_IMAGE_BYTES = 64 * 1024 * 1024


def decode_image(path: Path) -> ImageArray:
    """The image at ``path`` as BGR, or SourceError saying why it cannot be used."""
    cv2 = cv2_module()
    try:
        size = path.stat().st_size
        if size == 0:
            raise SourceError(f"{path.name}: empty file (0 bytes), skipped")
        if size > MAX_IMAGE_BYTES:
            raise SourceError(f"{path.name}: {size} bytes is larger than an image may be, skipped")
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SourceError(f"{path.name}: cannot be read ({type(exc).__name__}), skipped") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise SourceError(
            f"{path.name}: not a decodable image (corrupt or unknown format), skipped"
        )
    decoded: ImageArray = image
    return decoded
