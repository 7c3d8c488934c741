"""The deployment's audit signing key and the signed checkpoint format.

A checkpoint body is plain text so a witness can verify it with any Ed25519 library:

    privplate-audit-checkpoint/v1
    <origin>
    <tree size>
    <base64 root hash>
    <UTC time, ISO 8601>

The origin names the log (``privplate/`` + the first 16 hex digits of the public key), so a
checkpoint of one deployment can never be presented as another's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nacl.exceptions
import nacl.signing

from privplate.errors import AuditError, ConfigError
from privplate.tokens.kek import decode_key, read_key_file, write_private_file

_FORMAT = "privplate-audit-signing-key"
CHECKPOINT_FORMAT = "privplate-audit-checkpoint"
_BODY_HEADER = "privplate-audit-checkpoint/v1"
_MAC_DOMAIN = b"privplate/v1/audit-entry-mac\x00"


class AuditSigner:
    """Holds the Ed25519 signing key; derives the per-entry MAC key from its seed."""

    def __init__(self, seed: bytes) -> None:
        self._signing = nacl.signing.SigningKey(seed)
        # BLAKE2b keyed with the secret seed, over a domain string: a PRF-derived subkey.
        self._mac_key = hashlib.blake2b(_MAC_DOMAIN, key=seed, digest_size=32).digest()
        self.public_key = bytes(self._signing.verify_key)

    def __repr__(self) -> str:
        return f"AuditSigner(origin={self.origin!r})"

    @property
    def origin(self) -> str:
        return origin_for(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._signing.sign(message).signature)

    def entry_mac(self, seq: int, leaf: bytes) -> bytes:
        return hmac.new(self._mac_key, seq.to_bytes(8, "big") + leaf, hashlib.sha256).digest()

    @classmethod
    def generate(cls) -> AuditSigner:
        return cls(bytes(nacl.signing.SigningKey.generate()))


def origin_for(public_key: bytes) -> str:
    return f"privplate/{public_key.hex()[:16]}"


def write_signing_key(path: Path, signer_seed: bytes) -> None:
    body = json.dumps(
        {"format": _FORMAT, "version": 1, "seed": base64.b64encode(signer_seed).decode()}
    ).encode()
    write_private_file(path, body)


def create_signing_key(path: Path) -> None:
    """Create the key file if missing; never overwrite one (checkpoints depend on it)."""
    if not path.exists():
        write_signing_key(path, bytes(nacl.signing.SigningKey.generate()))


def read_signing_key(path: Path) -> AuditSigner:
    data = read_key_file(
        path,
        fmt=_FORMAT,
        what="audit signing key",
        missing_hint="run `privplate init` (it never overwrites keys) or set "
        "audit_signing_key_file in privplate.toml",
    )
    try:
        return AuditSigner(decode_key(data, "seed", 32))
    except ValueError as exc:
        raise ConfigError(f"audit signing key {path} is malformed ({exc})") from None


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root: bytes
    time: datetime
    public_key: bytes
    signature: bytes

    def body(self) -> bytes:
        return checkpoint_body(self.origin, self.tree_size, self.root, self.time)

    def verify_signature(self, expected_public_key: bytes | None = None) -> None:
        """Raise AuditError unless the signature is valid (and by the expected key)."""
        if expected_public_key is not None and not hmac.compare_digest(
            expected_public_key, self.public_key
        ):
            raise AuditError(
                "checkpoint was signed by a different key than this deployment's audit key"
            )
        if self.origin != origin_for(self.public_key):
            raise AuditError("checkpoint origin does not match its public key")
        try:
            nacl.signing.VerifyKey(self.public_key).verify(self.body(), self.signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            raise AuditError(
                f"checkpoint for tree size {self.tree_size} has an invalid signature"
            ) from None

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": CHECKPOINT_FORMAT,
                "version": 1,
                "origin": self.origin,
                "tree_size": self.tree_size,
                "root": self.root.hex(),
                "time": self.time.isoformat(),
                "public_key": self.public_key.hex(),
                "signature": base64.b64encode(self.signature).decode(),
                "body": self.body().decode(),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("not a privplate audit checkpoint")
            size = data.get("tree_size")
            if type(data.get("version")) is not int or data["version"] != 1:
                raise ValueError("unsupported version")
            if type(size) is not int or size < 0:
                raise ValueError("tree_size must be a non-negative integer")
            checkpoint = cls(
                origin=str(data["origin"]),
                tree_size=size,
                root=bytes.fromhex(data["root"]),
                time=datetime.fromisoformat(data["time"]),
                public_key=bytes.fromhex(data["public_key"]),
                signature=base64.b64decode(data["signature"], validate=True),
            )
            if (len(checkpoint.root), len(checkpoint.public_key), len(checkpoint.signature)) != (
                32,
                32,
                64,
            ):
                raise ValueError("root, public key or signature has the wrong length")
            return checkpoint
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditError(f"checkpoint file is malformed ({exc})") from None


def checkpoint_body(origin: str, tree_size: int, root: bytes, time: datetime) -> bytes:
    return (
        f"{_BODY_HEADER}\n{origin}\n{tree_size}\n{base64.b64encode(root).decode()}\n"
        f"{time.isoformat()}\n"
    ).encode()


def sign_checkpoint(signer: AuditSigner, tree_size: int, root: bytes, time: datetime) -> Checkpoint:
    body = checkpoint_body(signer.origin, tree_size, root, time)
    return Checkpoint(signer.origin, tree_size, root, time, signer.public_key, signer.sign(body))
