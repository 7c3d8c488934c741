"""Threshold decryption of sealed evidence: Shamir shares of the evidence key over the
Ed25519 scalar field, partial decryptions with Chaum-Pedersen proofs, and their combination
into the one item's shared point. Nothing here rebuilds the evidence secret x."""

from privplate.threshold.combine import Partial, combine_partials, verified_partial
from privplate.threshold.dleq import Proof, prove_partial, verify_partial
from privplate.threshold.shamir import Share, lagrange_at_zero, split

__all__ = [
    "Partial",
    "Proof",
    "Share",
    "combine_partials",
    "lagrange_at_zero",
    "prove_partial",
    "split",
    "verified_partial",
    "verify_partial",
]
