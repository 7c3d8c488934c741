"""Hotlist plates at rest: SecretBox ciphertext plus a keyed MAC for de-duplication."""

from __future__ import annotations

import hashlib
import hmac

import nacl.secret
import nacl.utils

from privplate.errors import ConfigError
from privplate.server_secret import ServerSecret


class PlateBox:
    """Encrypts canonical hotlist plates under the deployment's hotlist key."""

    def __init__(self, secret: ServerSecret) -> None:
        self._box = nacl.secret.SecretBox(secret.subkey("hotlist-box"))
        self._mac_key = secret.subkey("hotlist-mac")

    def seal(self, canonical: str) -> bytes:
        return bytes(self._box.encrypt(canonical.encode("ascii")))

    def open(self, sealed: bytes) -> str:
        try:
            return bytes(self._box.decrypt(sealed)).decode("ascii")
        except Exception:
            raise ConfigError(
                "a hotlist entry does not decrypt with this deployment's server secret "
                "(keys/server.key was replaced?); restore the original key file"
            ) from None

    def mac(self, canonical: str) -> bytes:
        return hmac.new(self._mac_key, canonical.encode("ascii"), hashlib.sha256).digest()
