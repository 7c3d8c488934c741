"""The server's own secret, from which purpose-bound subkeys are derived.

One 32-byte secret in a 0600 JSON key file (``keys/server.key``); each use gets its own subkey
(BLAKE2b keyed with the secret, personalised with the purpose), so a leak of one derived key
reveals nothing about the others.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nacl.hash
import nacl.utils

from privplate.errors import ConfigError
from privplate.tokens.kek import decode_key, read_key_file, write_private_file

_FORMAT = "privplate-server-secret"
Purpose = Literal[
    "hotlist-box",
    "hotlist-mac",
    "webhook-box",
    "session-mac",
    "unseal-box",
    "unseal-partial",
    "console-csrf",
    "search-approval",
    "pending-import",
    "enrol-code",
    "enrol-throttle",
]


@dataclass(frozen=True)
class ServerSecret:
    secret: bytes = field(repr=False)

    def subkey(self, purpose: Purpose) -> bytes:
        person = purpose.encode()[:16].ljust(16, b"\0")
        return nacl.hash.blake2b(
            b"privplate/v1/server-subkey",
            key=self.secret,
            person=person,
            digest_size=32,
            encoder=nacl.encoding.RawEncoder,
        )


def create_server_secret(path: Path) -> bool:
    """Create the file if missing (never overwrite: hotlists are encrypted under it)."""
    if path.exists():
        return False
    body = json.dumps(
        {
            "format": _FORMAT,
            "version": 1,
            "secret": base64.b64encode(nacl.utils.random(32)).decode(),
        }
    ).encode()
    write_private_file(path, body)
    return True


def read_server_secret(path: Path) -> ServerSecret:
    data = read_key_file(
        path,
        fmt=_FORMAT,
        what="server secret",
        missing_hint="run `privplate init` (it creates missing keys and never overwrites any)",
    )
    try:
        return ServerSecret(decode_key(data, "secret", 32))
    except ValueError as exc:
        raise ConfigError(f"server secret {path} is malformed ({exc})") from None
