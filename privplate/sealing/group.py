"""Ed25519 group arithmetic used by sealing and the threshold unseal, via libsodium.

Scalars are 32-byte little-endian integers reduced mod l; points are 32-byte compressed
Edwards points in the prime-order subgroup. Everything here is a thin, checked wrapper so the
rest of the code never handles an unvalidated point.
"""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from privplate.errors import SealingError

SCALAR_BYTES = 32
POINT_BYTES = 32
#: l, the order of the prime-order subgroup of Curve25519.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
#: B, the Ed25519 base point (compressed).
BASE_POINT = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")


def random_scalar() -> bytes:
    """Uniform non-zero scalar mod l (64 random bytes reduced, so the bias is negligible)."""
    while True:
        scalar = bytes(sodium.crypto_core_ed25519_scalar_reduce(nacl.utils.random(64)))
        if any(scalar):
            return scalar


def scalar_from_int(value: int) -> bytes:
    return (value % GROUP_ORDER).to_bytes(SCALAR_BYTES, "little")


def scalar_to_int(scalar: bytes) -> int:
    return int.from_bytes(scalar, "little")


def check_point(point: bytes, what: str) -> bytes:
    """Refuse anything that is not a prime-order-subgroup point (no small-order tricks)."""
    if len(point) != POINT_BYTES or not sodium.crypto_core_ed25519_is_valid_point(point):
        raise SealingError(f"{what} is not a valid Ed25519 group element")
    return bytes(point)


def check_scalar(scalar: bytes) -> bytes:
    """Refuse non-canonical scalars: libsodium would silently drop bit 255 of one >= l."""
    if len(scalar) != SCALAR_BYTES or not 0 < scalar_to_int(scalar) < GROUP_ORDER:
        raise SealingError("scalar must be 32 bytes encoding an integer in [1, l)")
    return scalar


def base_mul(scalar: bytes) -> bytes:
    """scalar * B, without clamping (we need true group arithmetic for Lagrange combination)."""
    check_scalar(scalar)
    try:
        return bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(scalar))
    except nacl.exceptions.RuntimeError:
        raise SealingError("scalar is zero or invalid") from None


def mul(scalar: bytes, point: bytes) -> bytes:
    """scalar * point, without clamping."""
    check_scalar(scalar)
    try:
        return bytes(sodium.crypto_scalarmult_ed25519_noclamp(scalar, point))
    except nacl.exceptions.RuntimeError:
        raise SealingError(
            "scalar multiplication gave the identity (invalid scalar or point)"
        ) from None


def add(p: bytes, q: bytes) -> bytes:
    return bytes(sodium.crypto_core_ed25519_add(p, q))


def sub(p: bytes, q: bytes) -> bytes:
    return bytes(sodium.crypto_core_ed25519_sub(p, q))


def hash_to_scalar(*parts: bytes) -> bytes:
    """SHA-512 of the length-prefixed parts, reduced mod l (for Fiat-Shamir challenges)."""
    digest = hashlib.sha512()
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return bytes(sodium.crypto_core_ed25519_scalar_reduce(digest.digest()))
