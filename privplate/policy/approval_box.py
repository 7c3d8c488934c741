"""The plate of a search awaiting approval, at rest: sealed to that one request.

XChaCha20-Poly1305 under ``subkey(search-approval)`` of the server secret (keys/server.key,
never in the database), with the request's id as associated data, so a ciphertext copied into
another request's row does not open; the canonical plate is padded to a fixed length, so the
ciphertext's size says nothing about the plate (SPEC §10.6).
"""

from __future__ import annotations

import uuid

from privplate.errors import SealingError
from privplate.sealing.bound import NONCE_BYTES, open_bound, seal_bound
from privplate.tokens.canonical import MAX_PLATE_LENGTH

DOMAIN = b"privplate/v1/search-approval\x00"
#: Every canonical plate is padded with NUL bytes to this length before sealing.
PADDED_BYTES = 16
#: nonce || ciphertext of the padded plate || tag
SEALED_BYTES = NONCE_BYTES + PADDED_BYTES + 16

if MAX_PLATE_LENGTH > PADDED_BYTES:  # pragma: no cover - a module invariant
    raise RuntimeError("the padding must hold the longest canonical plate")


def associated_data(request_id: uuid.UUID) -> bytes:
    """DOMAIN || the request's 16 id bytes."""
    return DOMAIN + request_id.bytes


def seal_request_plate(
    key: bytes, request_id: uuid.UUID, canonical: str, *, nonce: bytes | None = None
) -> bytes:
    """nonce || XChaCha20-Poly1305(key, nonce, pad(canonical), AD). ``nonce`` is for vectors."""
    text = canonical.encode("ascii")
    if not 1 <= len(text) <= MAX_PLATE_LENGTH:
        raise SealingError("only a canonical plate is sealed for a pending search")
    padded = text.ljust(PADDED_BYTES, b"\0")
    return seal_bound(key, associated_data(request_id), padded, nonce=nonce)


def open_request_plate(key: bytes, request_id: uuid.UUID, sealed: bytes) -> str:
    """The canonical plate sealed to this request; SealingError for anything else."""
    if len(sealed) != SEALED_BYTES:
        raise SealingError("a pending search's sealed plate has the wrong length")
    padded = open_bound(key, associated_data(request_id), sealed)
    if padded is None:
        raise SealingError(
            "a pending search's sealed plate does not open for this request (moved, altered, "
            "or sealed under another server secret)"
        )
    return padded.rstrip(b"\0").decode("ascii")
