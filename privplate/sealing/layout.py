"""What a sealed evidence item holds once opened: the plate crop and a downscaled frame::

b"PPEV" | u32 big-endian length of the crop JPEG | crop JPEG | frame JPEG
"""

from __future__ import annotations

import struct

from privplate.errors import SealingError

MAGIC = b"PPEV"


def pack_evidence(crop_jpeg: bytes, frame_jpeg: bytes) -> bytes:
    return MAGIC + struct.pack(">I", len(crop_jpeg)) + crop_jpeg + frame_jpeg


def unpack_evidence(plaintext: bytes) -> tuple[bytes, bytes]:
    """(crop JPEG, frame JPEG) from an opened evidence item."""
    if len(plaintext) < 8 or not plaintext.startswith(MAGIC):
        raise SealingError("opened evidence is not in the privplate evidence layout")
    (length,) = struct.unpack(">I", plaintext[4:8])
    if 8 + length > len(plaintext):
        raise SealingError("opened evidence is truncated")
    return plaintext[8 : 8 + length], plaintext[8 + length :]
