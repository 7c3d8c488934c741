"""Plate tokens: truncated HMAC-SHA256 of the canonical plate under an epoch key.

A token is only comparable with tokens of the same epoch. Without the epoch key it reveals
nothing, and once the key is destroyed nobody can ever again test a plate against it.
"""

from __future__ import annotations

import hashlib
import hmac

from privplate.errors import InvalidPlate
from privplate.tokens.canonical import is_canonical

TOKEN_BYTES = 16
EPOCH_KEY_BYTES = 32
#: Domain separation: an epoch key is used for nothing but plate tokens.
TOKEN_DOMAIN = b"privplate/v1/plate-token\x00"


def plate_token(epoch_key: bytes, canonical: str) -> bytes:
    """Token of an already canonical plate (see :func:`privplate.tokens.canonical_plate`)."""
    if len(epoch_key) != EPOCH_KEY_BYTES:
        raise ValueError(f"epoch key must be {EPOCH_KEY_BYTES} bytes")
    if not is_canonical(canonical):
        raise InvalidPlate("only canonical plates are tokenized (use canonical_plate first)")
    mac = hmac.new(epoch_key, TOKEN_DOMAIN + canonical.encode("ascii"), hashlib.sha256)
    return mac.digest()[:TOKEN_BYTES]


def tokens_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison, so timing never tells how much of a token matched."""
    return hmac.compare_digest(a, b)
