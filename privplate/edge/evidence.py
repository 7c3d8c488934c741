"""Evidence: the plate crop and a downscaled frame, JPEG-encoded in memory and sealed at once.

The plaintext never touches a disk. Its layout is :mod:`privplate.sealing.layout`, shared with
the server that opens it after a two-person unseal.
"""

from __future__ import annotations

import uuid

from privplate.errors import SealingError
from privplate.sealing import seal
from privplate.sealing.layout import pack_evidence, unpack_evidence
from privplate.vision._deps import cv2_module
from privplate.vision.crops import crop
from privplate.vision.types import Box, ImageArray

JPEG_QUALITY = 85


def _jpeg(image: ImageArray) -> bytes:
    cv2 = cv2_module()
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise SealingError("the evidence image could not be JPEG-encoded")
    return bytes(encoded.tobytes())


def downscale(frame: ImageArray, longest_side: int) -> ImageArray:
    cv2 = cv2_module()
    height, width = frame.shape[:2]
    scale = longest_side / max(height, width)
    if scale >= 1.0:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    out: ImageArray = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return out


def pack(frame: ImageArray, box: Box, longest_side: int) -> bytes:
    plate = _jpeg(crop(frame, box, 0.1, 0.2))
    scene = _jpeg(downscale(frame, longest_side))
    return pack_evidence(plate, scene)


def unpack(plaintext: bytes) -> tuple[bytes, bytes]:
    """(crop JPEG, frame JPEG) from an opened evidence blob."""
    return unpack_evidence(plaintext)


def seal_evidence(
    frame: ImageArray, box: Box, public_key: bytes, *, longest_side: int = 640
) -> tuple[uuid.UUID, bytes]:
    evidence_id = uuid.uuid4()
    return evidence_id, seal(pack(frame, box, longest_side), public_key, evidence_id=evidence_id)
