"""C2SP signed notes (c2sp.org/signed-note), the envelope of checkpoints, cosignatures and
signed reports, so that tools that already exist (Go's ``golang.org/x/mod/sumdb/note``, the
witness ecosystem) verify what privplate signs.

A note is UTF-8 text ending in a newline, a blank line, then one line per signature::

    — <key name> base64(4-byte key hash || signature)

The key hash is the first four bytes of SHA-256(key name || "\\n" || algorithm byte ||
public key); it only picks the key, the signature does the proving. A verifier key is written
``<name>+<8 hex digits of the key hash>+base64(algorithm byte || public key)``.

Kept free of storage and privplate's own formats: the checkpoint, cosignature and report
modules build on it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from privplate.errors import AuditError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "SignatureLine",
    "check_text",
    "key_hash",
    "open_note",
    "parse_signature_lines",
    "sign_note",
    "split_note",
    "valid_key_name",
]

#: Algorithm bytes of c2sp.org/signed-note: plain Ed25519 and timestamped cosignatures.
ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_SIG_PREFIX = "\u2014 "  # an em dash and a space
#: Go's note.Open stops at 100 signatures; a published note never needs more.
MAX_SIGNATURES = 100


class NoteError(AuditError, ValueError):
    """A note, key or signature line is malformed or does not verify; the message says how."""


def valid_key_name(name: str) -> bool:
    """Non-empty, no white space (Unicode's), no ``+`` (it separates a verifier key's parts)."""
    return bool(name) and not any(c.isspace() for c in name) and "+" not in name


def key_hash(name: str, alg: int, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def check_text(text: str) -> None:
    """Refuse text a note cannot carry: it must end in a newline and hold no control character
    but the newline (Go's verifier refuses the whole note otherwise)."""
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    _check_controls(text, "a note's text")


def _check_controls(text: str, what: str) -> None:
    bad = next((c for c in text if ord(c) < 0x20 and c != "\n"), None)
    if bad is not None:
        raise NoteError(
            f"{what} must not contain control character U+{ord(bad):04X} (only newlines)"
        )


@dataclass(frozen=True)
class SignatureLine:
    """One parsed signature line: who claims to have signed, and the raw bytes after the hash."""

    name: str
    key_hash: int
    payload: bytes

    def render(self) -> str:
        blob = self.key_hash.to_bytes(4, "big") + self.payload
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


class NoteVerifier:
    """An Ed25519 note verifier: a key name and a public key."""

    def __init__(self, name: str, public_key: bytes, alg: int = ALG_ED25519) -> None:
        if not valid_key_name(name):
            raise NoteError(f"{name!r} is not a valid note key name (no spaces, no '+')")
        if len(public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")
        self.name = name
        self.public_key = public_key
        self.alg = alg
        self.key_hash = key_hash(name, alg, public_key)

    def __repr__(self) -> str:
        return f"NoteVerifier({self.vkey()!r})"

    def vkey(self) -> str:
        body = base64.b64encode(bytes([self.alg]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash:08x}+{body}"

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        """Read ``name+hash+key``; the hash must match the name and key."""
        name, sep1, rest = vkey.strip().partition("+")
        hash_hex, sep2, body = rest.partition("+")
        try:
            if not (sep1 and sep2) or len(hash_hex) != 8:
                raise ValueError("not name+hash+key")
            raw = base64.b64decode(body, validate=True)
            declared = int(hash_hex, 16)
        except (ValueError, binascii.Error):
            raise NoteError(
                "a verifier key is written name+8 hex digits+base64 key "
                "(as `privplate audit witness --init` or `audit public-key` print it)"
            ) from None
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise NoteError("the verifier key is not an Ed25519 (or cosignature/v1) key")
        verifier = cls(name, raw[1:], raw[0])
        if verifier.key_hash != declared:
            raise NoteError("the verifier key's hash does not match its name and key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            nacl.signing.VerifyKey(self.public_key).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True


class NoteSigner:
    """Signs notes with an Ed25519 seed under a key name."""

    def __init__(self, name: str, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.verifier = NoteVerifier(name, bytes(self._key.verify_key))
        self.name = name

    def __repr__(self) -> str:
        return f"NoteSigner({self.name!r})"

    def sign_bytes(self, message: bytes) -> bytes:
        return bytes(self._key.sign(message).signature)

    def signature_line(self, text: str) -> SignatureLine:
        check_text(text)
        return SignatureLine(self.name, self.verifier.key_hash, self.sign_bytes(text.encode()))


def sign_note(text: str, *signers: NoteSigner, keep: tuple[SignatureLine, ...] = ()) -> str:
    """The note ``text`` signed by each signer; ``keep``: signature lines already made (e.g. a
    witness's cosignature), written first as Go's note.Sign writes existing signatures."""
    check_text(text)
    # As Go's note.Sign: a kept line by a key that signs again now is replaced, not repeated.
    signing = {(s.name, s.verifier.key_hash) for s in signers}
    kept = [line for line in keep if (line.name, line.key_hash) not in signing]
    lines = [*kept, *(s.signature_line(text) for s in signers)]
    if not lines:
        raise NoteError("a note needs at least one signature")
    return text + "\n" + "".join(line.render() for line in lines)


def parse_signature_lines(block: str) -> list[SignatureLine]:
    lines: list[SignatureLine] = []
    # Split on LF only, as Go does: str.splitlines() also splits on U+2028, U+0085 and more.
    for raw in block.removesuffix("\n").split("\n"):
        if not raw.startswith(_SIG_PREFIX):
            raise NoteError("a signature line must start with an em dash and a space")
        name, _, b64 = raw[len(_SIG_PREFIX) :].partition(" ")
        try:
            blob = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError("a signature line's signature is not base64") from None
        if not valid_key_name(name) or not b64 or len(blob) < 5:
            raise NoteError("a signature line is malformed")
        lines.append(SignatureLine(name, int.from_bytes(blob[:4], "big"), blob[4:]))
        if len(lines) > MAX_SIGNATURES:
            raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return lines


@dataclass(frozen=True)
class OpenedNote:
    text: str
    #: Lines whose key was given and whose signature verified, by key name.
    verified: tuple[SignatureLine, ...]
    #: Lines by keys that were not given (kept, e.g. cosignatures checked elsewhere).
    unverified: tuple[SignatureLine, ...]


def split_note(message: str) -> tuple[str, list[SignatureLine]]:
    """Text and signature lines, checked for form only (no signature is verified)."""
    if "\r" in message:
        raise NoteError("a note uses bare newlines (LF), not CRLF")
    # The whole note, as Go's note.Open checks it: a control character in a signature line
    # (say in a key name) refuses the note there, so it must here too.
    _check_controls(message, "a signed note")
    try:
        message.encode()
    except UnicodeEncodeError:
        raise NoteError("a signed note must be valid UTF-8") from None
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("not a signed note: no blank line before the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    check_text(text)
    if not block.endswith("\n"):
        raise NoteError("a note's signature block must end with a newline")
    return text, parse_signature_lines(block)


def open_note(message: str, verifiers: list[NoteVerifier] | tuple[NoteVerifier, ...]) -> OpenedNote:
    """Check a note as Go's note.Open does: every line by a given key must verify (a bad one
    fails the whole note), at least one must, and lines by other keys are returned unverified.

    One difference, on the strict side: Go skips a repeated line by a key it has verified
    without checking it, so a note with a good and a bad signature by one key opens there;
    here every line by a given key is checked (c2sp.org/signed-note: a failing signature by
    a known key SHOULD reject the note)."""
    text, lines = split_note(message)
    known = {(v.name, v.key_hash): v for v in verifiers if v.alg == ALG_ED25519}
    verified: list[SignatureLine] = []
    unverified: list[SignatureLine] = []
    for line in lines:
        verifier = known.get((line.name, line.key_hash))
        if verifier is None:
            if line not in unverified:
                unverified.append(line)
            continue
        if not verifier.verify(text.encode(), line.payload):
            raise NoteError(f"the signature by {line.name} does not verify")
        if all(v.name != line.name or v.key_hash != line.key_hash for v in verified):
            verified.append(line)
    if not verified:
        raise NoteError("no signature on the note is by a key given to verify it")
    return OpenedNote(text, tuple(verified), tuple(unverified))
