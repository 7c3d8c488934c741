"""The deployment's audit signing key and the signed checkpoint formats.

A checkpoint (format 2, since migration 0014) is a C2SP tlog-checkpoint: the note text

    <origin>
    <tree size>
    <base64 root hash>

signed as a C2SP signed note under the key name = the origin, so that Go's
``golang.org/x/mod/sumdb/note`` and the witness ecosystem verify it as it is. It carries no
extension lines, so a witness's cosignature covers exactly what the log signed; the signing
time is kept beside it (the database row, the JSON wrapper), not signed.

Format 1, the checkpoints signed before, signed privplate's own body with the time in it:

    privplate-audit-checkpoint/v1
    <origin>
    <tree size>
    <base64 root hash>
    <UTC time, ISO 8601>

Those rows and files still verify; nothing new is signed that way.

The origin names the log (``privplate/`` + the first 16 hex digits of the public key), so a
checkpoint of one deployment can never be presented as another's.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nacl.exceptions
import nacl.signing

from privplate.audit.note import NoteSigner, NoteVerifier, SignatureLine, open_note, sign_note
from privplate.errors import AuditError, ConfigError
from privplate.tokens.kek import decode_key, read_key_file, write_private_file

_FORMAT = "privplate-audit-signing-key"
CHECKPOINT_FORMAT = "privplate-audit-checkpoint"
_BODY_HEADER = "privplate-audit-checkpoint/v1"
#: ``audit_checkpoints.format``: the v1 body above, or a C2SP signed note.
FORMAT_V1 = 1
FORMAT_NOTE = 2
#: How reports and docs name each format.
CHECKPOINT_FORMAT_NAMES = {
    FORMAT_V1: "privplate-audit-checkpoint/v1",
    FORMAT_NOTE: "c2sp.org/tlog-checkpoint",
}
#: Go's tlog parses sizes as int64.
MAX_TREE_SIZE = 2**63 - 1
_MAC_DOMAIN = b"privplate/v1/audit-entry-mac\x00"
#: The transparency report's signing seed is derived from the audit seed under this domain
#: (privplate/transparency/signed.py), so a deployment keeps one key file.
_REPORT_DOMAIN = b"privplate/v1/report-signing-key\x00"


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

    @property
    def note_signer(self) -> NoteSigner:
        return NoteSigner(self.origin, bytes(self._signing))

    @property
    def note_verifier(self) -> NoteVerifier:
        return note_verifier(self.public_key)

    def report_seed(self) -> bytes:
        """The Ed25519 seed that signs transparency reports: a PRF output of the audit seed
        (BLAKE2b keyed with it, like the MAC key), never the audit seed itself."""
        return hashlib.blake2b(_REPORT_DOMAIN, key=bytes(self._signing), digest_size=32).digest()

    def entry_mac(self, seq: int, leaf: bytes) -> bytes:
        return hmac.new(self._mac_key, seq.to_bytes(8, "big") + leaf, hashlib.sha256).digest()

    @classmethod
    def generate(cls) -> AuditSigner:
        return cls(bytes(nacl.signing.SigningKey.generate()))


def origin_for(public_key: bytes) -> str:
    return f"privplate/{public_key.hex()[:16]}"


def note_verifier(public_key: bytes) -> NoteVerifier:
    """The checkpoint verifier of a deployment's audit key: its key name is the origin. Its
    ``vkey()`` is what `privplate audit public-key` prints and Go's note.NewVerifier reads."""
    return NoteVerifier(origin_for(public_key), public_key)


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
    #: When it was signed: from the database row or the JSON wrapper; None for a checkpoint
    #: read from a bare note, which carries no time (format 2 does not sign it).
    time: datetime | None
    public_key: bytes
    signature: bytes
    format: int = FORMAT_V1

    def body(self) -> bytes:
        """The exact bytes the signature covers."""
        if self.format == FORMAT_NOTE:
            return note_text(self.origin, self.tree_size, self.root).encode()
        if self.format != FORMAT_V1:
            raise AuditError(f"checkpoint format {self.format} is not one privplate signs")
        if self.time is None:
            raise AuditError("a format 1 checkpoint signs its time, and this one has none")
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

    def to_note(self) -> str:
        """The C2SP signed note (format 2 only: a format 1 signature covers another text)."""
        if self.format != FORMAT_NOTE:
            raise AuditError(
                "a format 1 checkpoint cannot be written as a signed note (its signature covers "
                "the old body): give witnesses its JSON file, or a newer checkpoint"
            )
        line = SignatureLine(self.origin, note_verifier(self.public_key).key_hash, self.signature)
        return sign_note(self.body().decode(), keep=(line,))

    @classmethod
    def from_note(cls, text: str, verifier: NoteVerifier) -> Checkpoint:
        """Open a signed checkpoint note with ``verifier`` (the deployment's key, as
        :func:`note_verifier` makes it); other signature lines (cosignatures) are ignored."""
        opened = open_note(text, [verifier])
        origin, size, root = parse_note_text(opened.text)
        if origin != verifier.name or origin != origin_for(verifier.public_key):
            raise AuditError("checkpoint origin does not match its public key")
        return cls(
            origin=origin,
            tree_size=size,
            root=root,
            time=None,
            public_key=verifier.public_key,
            signature=opened.verified[0].payload,
            format=FORMAT_NOTE,
        )

    def to_json(self) -> str:
        """The JSON wrapper: version 1 for format 1 (with its signed ``body``), version 2 for
        a note (with the ``note`` and the unsigned signing ``time``)."""
        data: dict[str, object] = {
            "format": CHECKPOINT_FORMAT,
            "version": self.format,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "time": None if self.time is None else self.time.isoformat(),
            "public_key": self.public_key.hex(),
            "signature": base64.b64encode(self.signature).decode(),
        }
        if self.format == FORMAT_NOTE:
            data["note"] = self.to_note()
        else:
            data["body"] = self.body().decode()
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Read a JSON wrapper (version 1 or 2); the signed text is rebuilt from the members
        (``body`` and ``note`` are ignored), so members that disagree with it fail to verify."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("not a privplate audit checkpoint")
            size = data.get("tree_size")
            version = data.get("version")
            if type(version) is not int or version not in (FORMAT_V1, FORMAT_NOTE):
                raise ValueError("unsupported version")
            if type(size) is not int or size < 0:
                raise ValueError("tree_size must be a non-negative integer")
            when = data.get("time")
            if when is None and version == FORMAT_V1:
                raise ValueError("a version 1 checkpoint needs its time")
            checkpoint = cls(
                origin=str(data["origin"]),
                tree_size=size,
                root=bytes.fromhex(data["root"]),
                time=None if when is None else datetime.fromisoformat(when),
                public_key=bytes.fromhex(data["public_key"]),
                signature=base64.b64decode(data["signature"], validate=True),
                format=version,
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


def read_checkpoint(text: str, public_key: bytes) -> Checkpoint:
    """A checkpoint file as a witness keeps it: a signed note (what `privplate audit checkpoint
    --out` and /.well-known/privplate/checkpoint give) or an older JSON file. A note is opened
    with ``public_key``'s verifier, so it must be signed by that key; a JSON file is only
    parsed (its signature is checked by whoever uses it, e.g. verify_log)."""
    if text.lstrip().startswith("{"):
        return Checkpoint.from_json(text)
    return Checkpoint.from_note(text, note_verifier(public_key))


def note_text(origin: str, tree_size: int, root: bytes) -> str:
    """The C2SP tlog-checkpoint note text: origin, size, base64 root, no extension lines."""
    return f"{origin}\n{tree_size}\n{base64.b64encode(root).decode()}\n"


def parse_note_text(text: str) -> tuple[str, int, bytes]:
    """Origin, size and root of a checkpoint's note text, read strictly: privplate signs no
    extension lines, a size has no sign or leading zero, the root is 32 bytes in canonical
    base64."""
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise AuditError(
            "a privplate checkpoint note has exactly three lines: origin, tree size, root"
        )
    origin, size_text, root_text = lines[:3]
    if not (size_text.isascii() and size_text.isdigit()) or (
        size_text.startswith("0") and size_text != "0"
    ):
        raise AuditError("the checkpoint's tree size is not a decimal number")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise AuditError("the checkpoint's tree size is out of range")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        raise AuditError("the checkpoint's root is not base64") from None
    if len(root) != 32 or base64.b64encode(root).decode() != root_text:
        raise AuditError("the checkpoint's root is not a 32-byte hash in standard base64")
    return origin, size, root


def checkpoint_body(origin: str, tree_size: int, root: bytes, time: datetime) -> bytes:
    """The format 1 body (checkpoints signed before migration 0014)."""
    return (
        f"{_BODY_HEADER}\n{origin}\n{tree_size}\n{base64.b64encode(root).decode()}\n"
        f"{time.isoformat()}\n"
    ).encode()


def sign_checkpoint(
    signer: AuditSigner, tree_size: int, root: bytes, time: datetime, *, fmt: int = FORMAT_NOTE
) -> Checkpoint:
    """Sign a tree head; ``time`` is signed in format 1 only, and kept beside a note."""
    unsigned = Checkpoint(signer.origin, tree_size, root, time, signer.public_key, b"", fmt)
    return dataclasses.replace(unsigned, signature=signer.sign(unsigned.body()))
