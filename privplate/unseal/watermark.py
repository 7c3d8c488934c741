"""Watermarks on released images: who asked, under which request, when.

Every released JPEG carries a comment (COM) segment with the request id, requester and time.
Where OpenCV is installed (the edge extra, and single-box deployments), the frame also gets the
same text drawn across its bottom edge, so a screenshot or print still shows it.
"""

from __future__ import annotations

import importlib
import struct
from typing import Any

from privplate.errors import SealingError

SOI = b"\xff\xd8"


def comment_jpeg(jpeg: bytes, text: str) -> bytes:
    """Insert a COM segment right after the start-of-image marker."""
    if not jpeg.startswith(SOI):
        raise SealingError("released evidence is not a JPEG image")
    body = text.encode("utf-8")[:65_000]
    return SOI + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def jpeg_comments(jpeg: bytes) -> list[str]:
    """The COM segments of a JPEG (for tests and verifiers)."""
    out, pos = [], 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if marker == 0xDA:  # start of scan: no more metadata segments
            break
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        if marker == 0xFE:
            out.append(jpeg[pos + 4 : pos + 2 + length].decode("utf-8", "replace"))
        pos += 2 + length
    return out


def _cv2() -> Any | None:
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None


def visible_watermark(jpeg: bytes, text: str) -> bytes:
    """Draw ``text`` on the image if OpenCV is available; otherwise return it unchanged."""
    cv2 = _cv2()
    if cv2 is None:
        return jpeg
    import numpy as np  # noqa: PLC0415 - comes with OpenCV

    image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SealingError("released evidence does not decode as an image")
    height, width = image.shape[:2]
    scale = max(0.35, width / 1400)
    band = int(28 * scale) + 8
    cv2.rectangle(image, (0, height - band), (width, height), (0, 0, 0), thickness=-1)
    cv2.putText(
        image,
        text,
        (6, height - 8),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise SealingError("the watermarked image could not be encoded")
    return bytes(encoded.tobytes())


def watermark(jpeg: bytes, text: str, *, visible: bool) -> bytes:
    marked = visible_watermark(jpeg, text) if visible else jpeg
    return comment_jpeg(marked, text)
