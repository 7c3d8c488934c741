"""Server-side secrets at rest, each sealed to the row that holds it: XChaCha20-Poly1305 under
a subkey of the server secret, with the row's identity as associated data, so a ciphertext
copied into another row does not open. Layout: nonce (24 bytes) || ciphertext || tag.

Used for a pending search's plate (privplate.policy.approval_box) and a console import waiting
for its confirmation (privplate.console.pending_imports); each pads its plaintext itself.
"""

from __future__ import annotations

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16


def seal_bound(
    key: bytes, associated: bytes, plaintext: bytes, *, nonce: bytes | None = None
) -> bytes:
    """nonce || XChaCha20-Poly1305(key, nonce, plaintext, associated). ``nonce`` is for vectors."""
    nonce = nonce if nonce is not None else nacl.utils.random(NONCE_BYTES)
    box = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, associated, nonce, key)
    return nonce + bytes(box)


def open_bound(key: bytes, associated: bytes, sealed: bytes) -> bytes | None:
    """The plaintext, or None when the ciphertext was altered, moved to another row or sealed
    under another key."""
    try:
        return bytes(
            sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                sealed[NONCE_BYTES:], associated, sealed[:NONCE_BYTES], key
            )
        )
    except nacl.exceptions.CryptoError:
        return None
