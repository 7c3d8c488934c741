"""The one function that rebuilds the evidence secret x from shares.

Only the key ceremony's re-sharing (an officer leaves: the same X, new shares) and tests may
import this module; the server and the API never do, and a structural test enforces it.
Unsealing never needs x: see :mod:`privplate.threshold.combine`.
"""

from __future__ import annotations

from collections.abc import Sequence

from privplate.errors import SealingError
from privplate.sealing.group import GROUP_ORDER, scalar_from_int, scalar_to_int
from privplate.threshold.shamir import Share, lagrange_at_zero


def reconstruct_secret(shares: Sequence[Share], threshold: int) -> bytes:
    if len(shares) < threshold:
        raise SealingError(f"{len(shares)} shares given; {threshold} are needed")
    chosen = list(shares)[:threshold]
    lambdas = lagrange_at_zero([s.index for s in chosen])
    x = sum(scalar_to_int(lambdas[s.index]) * scalar_to_int(s.value) for s in chosen) % GROUP_ORDER
    return scalar_from_int(x)
