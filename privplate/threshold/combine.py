"""Combining verified partial decryptions into S = x*R for one item: S = sum(lambda_i * D_i).

The server learns S (hence that one item's key) and nothing that opens any other item."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from privplate.errors import SealingError
from privplate.sealing import group
from privplate.threshold.dleq import Proof, verify_partial
from privplate.threshold.shamir import lagrange_at_zero


@dataclass(frozen=True)
class Partial:
    index: int
    value: bytes  # D_i


def verified_partial(
    index: int,
    commitment: bytes,
    ephemeral: bytes,
    value: bytes,
    proof: Proof,
    context: bytes,
) -> Partial:
    verify_partial(commitment, ephemeral, value, proof, context)
    return Partial(index, value)


def combine_partials(partials: Sequence[Partial], threshold: int) -> bytes:
    """S from exactly ``threshold`` verified partials of distinct shares."""
    if len(partials) < threshold:
        raise SealingError(f"{len(partials)} partial decryptions; {threshold} are needed")
    chosen = list(partials)[:threshold]
    lambdas = lagrange_at_zero([p.index for p in chosen])
    total: bytes | None = None
    for p in chosen:
        term = group.mul(lambdas[p.index], group.check_point(p.value, "partial decryption"))
        total = term if total is None else group.add(total, term)
    if total is None:
        raise SealingError("no partial decryptions to combine")
    return total
