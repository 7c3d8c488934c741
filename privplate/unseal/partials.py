"""Officers' partial decryptions at rest: sealed to their request under a server subkey.

A partial D_i = x_i*R depends only on the item and the share, not on the request it was made
for, so T plaintext partials of one item opened it whatever requests they came with. The
server therefore keeps each one only as XChaCha20-Poly1305 ciphertext under
``subkey(unseal-partial)`` (keys/server.key, never in the database), with the request context
and share index as associated data: a copy of the database alone holds nothing to combine, and
a row moved to another request or share does not open (SPEC §7.6).
"""

from __future__ import annotations

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from privplate.errors import SealingError

DOMAIN = b"privplate/v1/unseal-partial\x00"
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
PARTIAL_BYTES = 32
PROOF_BYTES = 64
#: nonce || ciphertext of D_i || c || s || tag
SEALED_BYTES = NONCE_BYTES + PARTIAL_BYTES + PROOF_BYTES + 16


def associated_data(context: bytes, share_index: int) -> bytes:
    """DOMAIN || ctx (the request context of §7.6) || u8(share index)."""
    if not 1 <= share_index <= 255:
        raise SealingError("a share index is 1..255")
    return DOMAIN + context + bytes([share_index])


def seal_partial(
    key: bytes,
    context: bytes,
    share_index: int,
    partial: bytes,
    proof: bytes,
    *,
    nonce: bytes | None = None,
) -> bytes:
    """nonce || XChaCha20-Poly1305(key, nonce, D_i || proof, AD). ``nonce`` is for vectors."""
    if len(partial) != PARTIAL_BYTES or len(proof) != PROOF_BYTES:
        raise SealingError("a partial is 32 bytes and its proof 64")
    nonce = nonce if nonce is not None else nacl.utils.random(NONCE_BYTES)
    box = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        partial + proof, associated_data(context, share_index), nonce, key
    )
    return nonce + bytes(box)


def open_partial(key: bytes, context: bytes, share_index: int, sealed: bytes) -> bytes:
    """D_i from a sealed partial of this request and share; SealingError for anything else."""
    if len(sealed) != SEALED_BYTES:
        raise SealingError("a stored partial has the wrong length")
    try:
        plain = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            sealed[NONCE_BYTES:], associated_data(context, share_index), sealed[:NONCE_BYTES], key
        )
    except nacl.exceptions.CryptoError:
        raise SealingError(
            "a stored partial does not open for this request and share (moved, altered, or "
            "sealed under another server secret)"
        ) from None
    return bytes(plain[:PARTIAL_BYTES])
