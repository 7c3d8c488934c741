"""C2SP tlog-cosignature v1 (c2sp.org/tlog-cosignature, Ed25519): a witness's statement that,
as of a time, the checkpoint is the largest consistent tree head it has seen of that log.

A cosignature is a signature line of the signed note (c2sp.org/signed-note) whose key hash is
computed with the algorithm byte 0x04, and whose payload is the 8-byte big-endian POSIX
timestamp followed by the 64-byte Ed25519 signature over::

    cosignature/v1
    time <timestamp>
    <the checkpoint note's text, every line, the final newline included>

The message does not name the cosigner, so one key must serve one cosigner only (the spec's
rule); the key name only picks the key. Pure: no storage, no network, core install only.
"""

from __future__ import annotations

from dataclasses import dataclass

import nacl.signing

from privplate.audit.note import (
    ALG_COSIGNATURE_V1,
    NoteError,
    NoteVerifier,
    SignatureLine,
    check_text,
)

__all__ = [
    "COSIGNATURE_HEADER",
    "MAX_TIMESTAMP",
    "Cosignature",
    "Cosigner",
    "cosigned_message",
    "parse_cosignature",
    "verify_cosignature",
]

COSIGNATURE_HEADER = "cosignature/v1\n"
#: The spec bounds the timestamp to a signed 64-bit value.
MAX_TIMESTAMP = 2**63 - 1
_PAYLOAD = 8 + 64


def cosigned_message(note_text: str, timestamp: int) -> bytes:
    """The bytes a v1 cosignature signs: header, time line, then the checkpoint's text."""
    check_text(note_text)
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"a cosignature's timestamp must be in 0..2^63-1, not {timestamp}")
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{note_text}".encode()


@dataclass(frozen=True)
class Cosignature:
    """One parsed cosignature line: who (name and key hash), when, and the signature."""

    name: str
    key_hash: int
    timestamp: int
    signature: bytes

    def line(self) -> SignatureLine:
        return SignatureLine(
            self.name, self.key_hash, self.timestamp.to_bytes(8, "big") + self.signature
        )


def parse_cosignature(line: SignatureLine) -> Cosignature:
    """Read a signature line as a v1 cosignature (form only; nothing is verified)."""
    if len(line.payload) != _PAYLOAD:
        raise NoteError(
            f"the signature by {line.name} is {len(line.payload)} bytes after its key hash; a "
            f"cosignature/v1 is {_PAYLOAD} (an 8-byte timestamp and an Ed25519 signature)"
        )
    timestamp = int.from_bytes(line.payload[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise NoteError(f"the cosignature by {line.name} has a timestamp beyond 2^63-1")
    return Cosignature(line.name, line.key_hash, timestamp, line.payload[8:])


def verify_cosignature(verifier: NoteVerifier, note_text: str, line: SignatureLine) -> Cosignature:
    """The cosignature on ``line`` if it is by ``verifier`` and verifies over ``note_text``;
    NoteError otherwise, saying which check failed."""
    if verifier.alg != ALG_COSIGNATURE_V1:
        raise NoteError(
            f"the key of {verifier.name} is not a cosignature/v1 key (its vkey's algorithm "
            "byte must be 0x04)"
        )
    if line.name != verifier.name or line.key_hash != verifier.key_hash:
        raise NoteError(f"the signature line is by {line.name}, not by witness {verifier.name}")
    cosignature = parse_cosignature(line)
    message = cosigned_message(note_text, cosignature.timestamp)
    if not verifier.verify(message, cosignature.signature):
        raise NoteError(
            f"the cosignature by {line.name} (time {cosignature.timestamp}) does not verify "
            "over this checkpoint"
        )
    return cosignature


class Cosigner:
    """A witness's Ed25519 key under its name: cosigns checkpoint notes."""

    def __init__(self, name: str, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.verifier = NoteVerifier(name, bytes(self._key.verify_key), ALG_COSIGNATURE_V1)
        self.name = name

    def __repr__(self) -> str:
        return f"Cosigner({self.name!r})"

    def vkey(self) -> str:
        return self.verifier.vkey()

    def cosign(self, note_text: str, timestamp: int) -> Cosignature:
        signature = bytes(self._key.sign(cosigned_message(note_text, timestamp)).signature)
        return Cosignature(self.name, self.verifier.key_hash, timestamp, signature)
