"""Chaum-Pedersen proof that a partial decryption D_i = x_i*R uses the same x_i as the
officer's published commitment X_i = x_i*B (discrete-log equality), made non-interactive
with a Fiat-Shamir challenge that binds the unseal request, so a partial made for one request
cannot be replayed for another."""

from __future__ import annotations

from dataclasses import dataclass

import nacl.bindings as sodium

from privplate.errors import SealingError
from privplate.sealing import group

DOMAIN = b"privplate/v1/unseal-dleq\x00"


@dataclass(frozen=True)
class Proof:
    challenge: bytes  # c
    response: bytes  # s = k + c*x_i

    def to_bytes(self) -> bytes:
        return self.challenge + self.response

    @classmethod
    def from_bytes(cls, data: bytes) -> Proof:
        if len(data) != 64:
            raise SealingError("a partial-decryption proof is 64 bytes")
        return cls(data[:32], data[32:])


def _challenge(
    commitment: bytes, ephemeral: bytes, partial: bytes, a1: bytes, a2: bytes, context: bytes
) -> bytes:
    return group.hash_to_scalar(
        DOMAIN, group.BASE_POINT, commitment, ephemeral, partial, a1, a2, context
    )


def prove_partial(
    share_value: bytes, ephemeral: bytes, context: bytes, *, nonce: bytes | None = None
) -> tuple[bytes, Proof]:
    """D_i = x_i*R and a proof that log_B(X_i) = log_R(D_i). ``nonce`` is for vectors only."""
    group.check_point(ephemeral, "evidence point R")
    partial = group.mul(share_value, ephemeral)
    commitment = group.base_mul(share_value)
    k = nonce if nonce is not None else group.random_scalar()
    a1, a2 = group.base_mul(k), group.mul(k, ephemeral)
    c = _challenge(commitment, ephemeral, partial, a1, a2, context)
    s = bytes(
        sodium.crypto_core_ed25519_scalar_add(
            k, sodium.crypto_core_ed25519_scalar_mul(c, share_value)
        )
    )
    return partial, Proof(c, s)


def verify_partial(
    commitment: bytes, ephemeral: bytes, partial: bytes, proof: Proof, context: bytes
) -> None:
    """Raise SealingError unless ``partial`` is x_i*R for the x_i behind ``commitment``."""
    group.check_point(commitment, "share commitment")
    group.check_point(ephemeral, "evidence point R")
    group.check_point(partial, "partial decryption")
    c, s = proof.challenge, proof.response
    if group.scalar_to_int(c) == 0 or group.scalar_to_int(s) == 0:
        raise SealingError("the partial-decryption proof does not verify")
    try:
        group.check_scalar(c)
        group.check_scalar(s)
        a1 = group.sub(group.base_mul(s), group.mul(c, commitment))
        a2 = group.sub(group.mul(s, ephemeral), group.mul(c, partial))
    except SealingError:
        raise SealingError("the partial-decryption proof does not verify") from None
    if _challenge(commitment, ephemeral, partial, a1, a2, context) != c:
        raise SealingError(
            "the partial-decryption proof does not verify (wrong share, another request, or "
            "a forged partial)"
        )
