"""Shamir's secret sharing over the Ed25519 scalar field (integers mod l).

``split`` deals shares of a secret; ``lagrange_at_zero`` gives the coefficients with which
shares (or their multiples of a point) combine. Combining scalars into the secret itself lives
only in :mod:`privplate.ceremony.reconstruct`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from privplate.errors import SealingError
from privplate.sealing.group import GROUP_ORDER, base_mul, scalar_from_int, scalar_to_int

MAX_SHARES = 255


@dataclass(frozen=True)
class Share:
    index: int  # x-coordinate, 1..N
    value: bytes = field(repr=False)  # f(index), a scalar

    @property
    def commitment(self) -> bytes:
        """X_i = x_i * B, published so partial decryptions can be checked."""
        return base_mul(self.value)


def _random_coefficient() -> int:
    return secrets.randbelow(GROUP_ORDER - 1) + 1


def split(secret: bytes, *, shares: int, threshold: int) -> list[Share]:
    """Deal ``shares`` shares of ``secret`` such that any ``threshold`` of them determine it."""
    if not 2 <= threshold <= shares <= MAX_SHARES:
        raise SealingError(
            f"need 2 <= threshold <= officers <= {MAX_SHARES} (got threshold {threshold}, "
            f"officers {shares})"
        )
    x = scalar_to_int(secret) % GROUP_ORDER
    if x == 0:
        raise SealingError("the secret must be a non-zero scalar")
    coefficients = [x] + [_random_coefficient() for _ in range(threshold - 1)]
    out = []
    for i in range(1, shares + 1):
        value = 0
        for c in reversed(coefficients):  # Horner
            value = (value * i + c) % GROUP_ORDER
        if value == 0:  # probability ~2^-252; a zero share has no commitment, so re-deal
            return split(secret, shares=shares, threshold=threshold)
        out.append(Share(i, scalar_from_int(value)))
    return out


def split_with(secret: bytes, coefficients: Sequence[int], *, shares: int) -> list[Share]:
    """Deterministic dealing with the given higher coefficients (known-answer vectors only)."""
    coeffs = [scalar_to_int(secret) % GROUP_ORDER, *coefficients]
    out = []
    for i in range(1, shares + 1):
        value = 0
        for c in reversed(coeffs):
            value = (value * i + c) % GROUP_ORDER
        out.append(Share(i, scalar_from_int(value)))
    return out


def lagrange_at_zero(indices: Sequence[int]) -> dict[int, bytes]:
    """lambda_i = prod_{j != i} j / (j - i) mod l, for distinct non-zero indices."""
    if len(set(indices)) != len(indices):
        raise SealingError("share indices must be distinct (the same share was used twice)")
    if any(not 1 <= i <= MAX_SHARES for i in indices):
        raise SealingError(f"share indices are 1..{MAX_SHARES}")
    out: dict[int, bytes] = {}
    for i in indices:
        num, den = 1, 1
        for j in indices:
            if j != i:
                num = num * j % GROUP_ORDER
                den = den * (j - i) % GROUP_ORDER
        out[i] = scalar_from_int(num * pow(den, -1, GROUP_ORDER))
    return out
