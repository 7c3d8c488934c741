"""How an edge device talks to the server: every request is signed with the device's Ed25519
key over its method, path, time, a fresh nonce and the SHA-256 of its body.

Headers::

    X-Privplate-Device: <device id>
    X-Privplate-Timestamp: <unix seconds>
    X-Privplate-Nonce: <32 hex digits, fresh per request>
    X-Privplate-Signature: <base64 Ed25519 signature of signed_message(...)>

The server refuses a request that is unsigned, from an unknown or revoked device, older than
``server.device_request_max_age_seconds`` (or that far in the future), whose nonce it has seen,
or whose body does not match the signature. A retried ingest batch is signed afresh and carries
the same ``batch_id`` and the same body bytes: the server answers it without storing it twice.
See crypto/SPEC.md, "Device requests".
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.public
import nacl.signing

from privplate.errors import DeviceRejected

DOMAIN = b"privplate/v1/device-request\0"
HEADER_DEVICE = "X-Privplate-Device"
HEADER_TIMESTAMP = "X-Privplate-Timestamp"
HEADER_NONCE = "X-Privplate-Nonce"
HEADER_SIGNATURE = "X-Privplate-Signature"
NONCE_BYTES = 16


def signed_message(method: str, path: str, timestamp: int, nonce: bytes, body: bytes) -> bytes:
    """The exact bytes a device signs. ``path`` includes the query string, if any."""
    return b"".join(
        (
            DOMAIN,
            method.upper().encode("ascii"),
            b"\n",
            path.encode("utf-8"),
            b"\n",
            str(timestamp).encode("ascii"),
            b"\n",
            nonce.hex().encode("ascii"),
            b"\n",
            hashlib.sha256(body).hexdigest().encode("ascii"),
        )
    )


@dataclass(frozen=True)
class DeviceKey:
    """A device's signing key (kept on the edge, mode 0600)."""

    device_id: str
    seed: bytes = field(repr=False)

    @classmethod
    def generate(cls, device_id: str) -> DeviceKey:
        return cls(device_id, bytes(nacl.signing.SigningKey.generate()))

    @property
    def public_key(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self.seed).verify_key)

    def sign_request(
        self, method: str, path: str, body: bytes, *, now: float | None = None
    ) -> dict[str, str]:
        timestamp = int(now if now is not None else time.time())
        nonce = secrets.token_bytes(NONCE_BYTES)
        signature = (
            nacl.signing.SigningKey(self.seed)
            .sign(signed_message(method, path, timestamp, nonce, body))
            .signature
        )
        return {
            HEADER_DEVICE: self.device_id,
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_NONCE: nonce.hex(),
            HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
        }

    def open_sealed_key(self, sealed: bytes) -> bytes:
        """Open an epoch key the server sealed to this device's key."""
        private = nacl.signing.SigningKey(self.seed).to_curve25519_private_key()
        try:
            return bytes(nacl.public.SealedBox(private).decrypt(sealed))
        except nacl.exceptions.CryptoError:
            raise DeviceRejected(
                "the epoch key from the server does not open with this device's key "
                "(was the device re-registered with another key?)"
            ) from None


@dataclass(frozen=True)
class SignedHeaders:
    device_id: str
    timestamp: int
    nonce: bytes
    signature: bytes


def parse_headers(headers: dict[str, str]) -> SignedHeaders:
    """Read the four headers; any problem is a DeviceRejected naming the header."""
    lowered = {k.lower(): v for k, v in headers.items()}

    def get(name: str) -> str:
        value = lowered.get(name.lower())
        if not value:
            raise DeviceRejected(f"device requests must carry the {name} header")
        return value

    device_id = get(HEADER_DEVICE)
    try:
        timestamp = int(get(HEADER_TIMESTAMP))
    except ValueError:
        raise DeviceRejected(f"{HEADER_TIMESTAMP} must be whole unix seconds") from None
    try:
        nonce = bytes.fromhex(get(HEADER_NONCE))
    except ValueError:
        nonce = b""
    if len(nonce) != NONCE_BYTES:
        raise DeviceRejected(f"{HEADER_NONCE} must be {NONCE_BYTES * 2} hex digits")
    try:
        signature = base64.b64decode(get(HEADER_SIGNATURE), validate=True)
    except ValueError:
        signature = b""
    if len(signature) != 64:
        raise DeviceRejected(f"{HEADER_SIGNATURE} must be a base64 Ed25519 signature")
    return SignedHeaders(device_id, timestamp, nonce, signature)


def verify_signature(
    public_key: bytes, signed: SignedHeaders, method: str, path: str, body: bytes
) -> None:
    message = signed_message(method, path, signed.timestamp, signed.nonce, body)
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signed.signature)
    except nacl.exceptions.BadSignatureError:
        raise DeviceRejected(
            "the device signature does not match this request (tampered, or signed with "
            "another key)"
        ) from None


def seal_to_device(public_key: bytes, secret: bytes) -> bytes:
    """Encrypt (anonymous sealed box) to a device's Ed25519 key, converted to X25519."""
    curve = nacl.signing.VerifyKey(public_key).to_curve25519_public_key()
    return bytes(nacl.public.SealedBox(curve).encrypt(secret))
