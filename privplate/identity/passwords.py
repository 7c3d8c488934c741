"""Argon2id password hashing (libsodium via PyNaCl) with uniform failure timing."""

from __future__ import annotations

from functools import cache

import nacl.exceptions
import nacl.pwhash

from privplate.errors import InvalidRequest

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1_024
# libsodium's "interactive" limits: ~60 ms and 64 MiB per hash on a small server.
_OPS = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
_MEM = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


def check_password_rules(password: str) -> None:
    if not (MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS):
        raise InvalidRequest(
            f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )


def hash_password(password: str) -> str:
    check_password_rules(password)
    return nacl.pwhash.argon2id.str(password.encode(), opslimit=_OPS, memlimit=_MEM).decode()


@cache
def _decoy_hash() -> bytes:
    # Verified against when the user does not exist, so that an unknown name costs the same
    # time as a wrong password.
    return nacl.pwhash.argon2id.str(b"privplate decoy password", opslimit=_OPS, memlimit=_MEM)


def verify_password(stored: str | None, password: str) -> bool:
    """True if ``password`` matches; with no stored hash, spend the same time and say no."""
    candidate = password.encode()[: MAX_PASSWORD_CHARS * 4]
    try:
        if stored is None:
            nacl.pwhash.verify(_decoy_hash(), candidate)
            return False
        return bool(nacl.pwhash.verify(stored.encode(), candidate))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        return False
