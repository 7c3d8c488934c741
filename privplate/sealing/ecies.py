"""Evidence sealing: ECIES over Ed25519 with XChaCha20-Poly1305 (see crypto/SPEC.md, "Sealing").

Sealing needs only the deployment's evidence public key X. Opening needs the shared point
S = r*X = x*R, which the two-person unseal computes from officers' partial decryptions without
ever rebuilding x; :func:`open_sealed` with x itself exists for tests and key ceremonies.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.utils

from privplate.errors import SealingError
from privplate.sealing import group

#: PPS2 names the evidence key it was sealed to: MAGIC || X || R || nonce || ciphertext. PPS1
#: (no X) is what privplate wrote before; it still opens, given the right X.
MAGIC = b"PPS2"
MAGIC_V1 = b"PPS1"
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES
HEADER_BYTES = len(MAGIC) + 2 * group.POINT_BYTES + NONCE_BYTES
HEADER_BYTES_V1 = len(MAGIC_V1) + group.POINT_BYTES + NONCE_BYTES
_KDF_PERSON = b"privplate-seal1\x00"
_AD_DOMAIN = b"privplate/v1/evidence\x00"


@dataclass(frozen=True)
class SealedParts:
    recipient: bytes | None  # X the item was sealed to (None in a PPS1 blob)
    ephemeral: bytes  # R = r*B
    nonce: bytes
    ciphertext: bytes  # includes the Poly1305 tag


def derive_item_key(shared: bytes, ephemeral: bytes, public_key: bytes) -> bytes:
    """Per-item AEAD key = BLAKE2b-256(S || R || X) with a privplate personalisation."""
    return bytes(
        nacl.hash.blake2b(
            shared + ephemeral + public_key,
            digest_size=32,
            person=_KDF_PERSON,
            encoder=nacl.encoding.RawEncoder,
        )
    )


def _associated_data(public_key: bytes, ephemeral: bytes, evidence_id: uuid.UUID) -> bytes:
    # Binding the evidence id means a ciphertext moved to another row no longer opens.
    return _AD_DOMAIN + public_key + ephemeral + evidence_id.bytes


def seal(plaintext: bytes, public_key: bytes, *, evidence_id: uuid.UUID) -> bytes:
    """Encrypt ``plaintext`` so that only the holder(s) of log_B(public_key) can open it."""
    return seal_with(
        plaintext,
        public_key,
        evidence_id=evidence_id,
        ephemeral_secret=group.random_scalar(),
        nonce=nacl.utils.random(NONCE_BYTES),
    )


def seal_with(
    plaintext: bytes,
    public_key: bytes,
    *,
    evidence_id: uuid.UUID,
    ephemeral_secret: bytes,
    nonce: bytes,
) -> bytes:
    """Deterministic core of :func:`seal`; only known-answer vectors pass r and the nonce."""
    public_key = group.check_point(public_key, "evidence public key")
    r = ephemeral_secret
    ephemeral = group.base_mul(r)
    shared = group.mul(r, public_key)
    key = derive_item_key(shared, ephemeral, public_key)
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, _associated_data(public_key, ephemeral, evidence_id), nonce, key
    )
    return MAGIC + public_key + ephemeral + nonce + bytes(ciphertext)


def is_sealed(blob: object) -> bool:
    """Whether ``blob`` looks like sealed evidence (either version); cheap, no parsing."""
    return isinstance(blob, bytes) and blob[:4] in (MAGIC, MAGIC_V1)


def parse_sealed(blob: bytes) -> SealedParts:
    if blob.startswith(MAGIC) and len(blob) >= HEADER_BYTES + TAG_BYTES:
        recipient: bytes | None = group.check_point(
            blob[4 : 4 + group.POINT_BYTES], "sealed evidence key X"
        )
        start = 4 + group.POINT_BYTES
    elif blob.startswith(MAGIC_V1) and len(blob) >= HEADER_BYTES_V1 + TAG_BYTES:
        recipient, start = None, 4
    else:
        raise SealingError("sealed evidence is malformed (bad header or truncated)")
    ephemeral = group.check_point(
        blob[start : start + group.POINT_BYTES], "sealed evidence point R"
    )
    nonce = blob[start + group.POINT_BYTES : start + group.POINT_BYTES + NONCE_BYTES]
    return SealedParts(
        recipient=recipient,
        ephemeral=ephemeral,
        nonce=nonce,
        ciphertext=blob[start + group.POINT_BYTES + NONCE_BYTES :],
    )


def sealed_to(blob: bytes) -> bytes | None:
    """The evidence key X a PPS2 blob was sealed to (None for PPS1)."""
    return parse_sealed(blob).recipient


def open_with_shared_point(
    blob: bytes, shared: bytes, public_key: bytes, *, evidence_id: uuid.UUID
) -> bytes:
    """Decrypt with S = x*R, however it was obtained (threshold combination or x itself)."""
    parts = parse_sealed(blob)
    return open_with_item_key(
        blob,
        derive_item_key(shared, parts.ephemeral, public_key),
        public_key,
        evidence_id=evidence_id,
    )


def open_with_item_key(
    blob: bytes, key: bytes, public_key: bytes, *, evidence_id: uuid.UUID
) -> bytes:
    """Decrypt with the item's key k = KDF(S, R, X) (kept by the server after a release)."""
    parts = parse_sealed(blob)
    if parts.recipient is not None and parts.recipient != public_key:
        raise SealingError("sealed evidence was sealed to another evidence key")
    try:
        return bytes(
            sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                parts.ciphertext,
                _associated_data(public_key, parts.ephemeral, evidence_id),
                parts.nonce,
                key,
            )
        )
    except nacl.exceptions.CryptoError:
        raise SealingError(
            "sealed evidence failed authentication: wrong key, wrong evidence id, or tampered"
        ) from None


def open_sealed(blob: bytes, secret: bytes, *, evidence_id: uuid.UUID) -> bytes:
    """Decrypt with the whole secret scalar x. Only tests and key ceremonies hold x."""
    parts = parse_sealed(blob)
    public_key = group.base_mul(secret)
    return open_with_shared_point(
        blob, group.mul(secret, parts.ephemeral), public_key, evidence_id=evidence_id
    )


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh (x, X = x*B). Deployments get X from the key ceremony; tests use this."""
    secret = group.random_scalar()
    return secret, group.base_mul(secret)
