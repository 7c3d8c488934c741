"""An officer's share file: one Shamir share of the evidence key, encrypted under a key derived
from the officer's passphrase (Argon2id, PyNaCl ``pwhash``) with SecretBox.

The file names the ceremony, the public key X, the share's index and commitment X_i, so the
officer's tool can check it before use; the share itself never leaves the officer's machine.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from privplate.errors import ConfigError, SealingError
from privplate.sealing import group
from privplate.threshold.shamir import Share
from privplate.tokens.kek import write_private_file

FORMAT = "privplate-evidence-share"
Strength = Literal["interactive", "moderate", "sensitive"]
_LIMITS = {
    "interactive": (
        nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    ),
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
    "sensitive": (nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE),
}
MIN_PASSPHRASE = 12


@dataclass(frozen=True)
class ShareFile:
    ceremony_id: uuid.UUID
    officer: str
    index: int
    threshold: int
    officers: int
    public_key: bytes
    commitment: bytes
    opslimit: int
    memlimit: int
    salt: bytes
    box: bytes = field(repr=False)

    def open(self, passphrase: str) -> Share:
        key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase.encode(),
            self.salt,
            opslimit=self.opslimit,
            memlimit=self.memlimit,
        )
        try:
            value = bytes(nacl.secret.SecretBox(key).decrypt(self.box))
        except nacl.exceptions.CryptoError:
            raise SealingError(
                "wrong passphrase for this share file (or the file was altered)"
            ) from None
        share = Share(self.index, group.check_scalar(value))
        if share.commitment != self.commitment:
            raise SealingError("the share does not match its commitment; the file is corrupt")
        return share

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": 1,
            "ceremony": str(self.ceremony_id),
            "officer": self.officer,
            "index": self.index,
            "threshold": self.threshold,
            "officers": self.officers,
            "public_key": self.public_key.hex(),
            "commitment": self.commitment.hex(),
            "kdf": {
                "alg": "argon2id13",
                "opslimit": self.opslimit,
                "memlimit": self.memlimit,
                "salt": self.salt.hex(),
            },
            "box": base64.b64encode(self.box).decode(),
        }


def seal_share(
    share: Share,
    passphrase: str,
    *,
    ceremony_id: uuid.UUID,
    officer: str,
    threshold: int,
    officers: int,
    public_key: bytes,
    strength: Strength = "moderate",
) -> ShareFile:
    if len(passphrase) < MIN_PASSPHRASE:
        raise SealingError(f"a share passphrase needs at least {MIN_PASSPHRASE} characters")
    opslimit, memlimit = _LIMITS[strength]
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        passphrase.encode(),
        salt,
        opslimit=opslimit,
        memlimit=memlimit,
    )
    return ShareFile(
        ceremony_id,
        officer,
        share.index,
        threshold,
        officers,
        public_key,
        share.commitment,
        opslimit,
        memlimit,
        salt,
        bytes(nacl.secret.SecretBox(key).encrypt(share.value)),
    )


def write_share_file(path: Path, share_file: ShareFile) -> None:
    write_private_file(path, json.dumps(share_file.to_json(), indent=2).encode())


def read_share_file(path: Path) -> ShareFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("version") != 1:
            raise ValueError("not a version 1 share file")
        kdf = data["kdf"]
        return ShareFile(
            ceremony_id=uuid.UUID(data["ceremony"]),
            officer=str(data["officer"]),
            index=int(data["index"]),
            threshold=int(data["threshold"]),
            officers=int(data["officers"]),
            public_key=group.check_point(bytes.fromhex(data["public_key"]), "public key"),
            commitment=group.check_point(bytes.fromhex(data["commitment"]), "commitment"),
            opslimit=int(kdf["opslimit"]),
            memlimit=int(kdf["memlimit"]),
            salt=bytes.fromhex(kdf["salt"]),
            box=base64.b64decode(data["box"], validate=True),
        )
    except OSError as exc:
        raise ConfigError(f"cannot read share file {path} ({type(exc).__name__})") from None
    except (ValueError, KeyError, TypeError, SealingError) as exc:
        raise ConfigError(f"share file {path} is malformed ({exc})") from None
