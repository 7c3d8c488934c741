"""The key-encryption key (KEK) file: the one secret that unlocks the epoch keyring.

The KEK is rotated every time epoch keys are destroyed, so that a database backup taken before
a purge cannot be decrypted with the key file that exists after it (crypto-shredding reaches
copies too). Rotation writes the next KEK beside the current one first and renames it into
place only after the database has re-wrapped every live key, so a crash at any point leaves
one of the two files able to open every row.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nacl.utils

from privplate.errors import ConfigError

KEK_BYTES = 32
_FORMAT = "privplate-kek"


@dataclass(frozen=True)
class Kek:
    generation: int
    key: bytes

    def __repr__(self) -> str:  # never print key material
        return f"Kek(generation={self.generation})"


def next_path(path: Path) -> Path:
    return path.with_name(path.name + ".next")


def new_kek(generation: int) -> Kek:
    return Kek(generation=generation, key=nacl.utils.random(KEK_BYTES))


def check_private(path: Path) -> None:
    """Refuse a key file that other users could read or write."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"key file {path} is accessible by other users (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )


def read_key_file(path: Path, *, fmt: str, what: str, missing_hint: str) -> dict[str, object]:
    """Load a privplate JSON key file: present, private (0600), the right format, version 1.

    Returns its fields; any structural problem is a ConfigError naming the file.
    """
    if not path.exists():
        raise ConfigError(f"{what} {path} is missing; {missing_hint}")
    check_private(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{what} {path} is malformed ({exc})") from None
    version = data.get("version") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("format") != fmt
        or type(version) is not int
        or (version != 1)
    ):
        raise ConfigError(f"{what} {path} is malformed (not a version 1 {fmt} file)")
    return data


def decode_key(data: dict[str, object], field: str, size: int) -> bytes:
    value = data.get(field)
    try:
        key = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except ValueError:
        key = b""
    if len(key) != size:
        raise ValueError(f"{field} must be {size} bytes of base64")
    return key


def read_kek(path: Path) -> Kek:
    data = read_key_file(
        path,
        fmt=_FORMAT,
        what="key-encryption key file",
        missing_hint="run `privplate init --dir DIR` to create a deployment, or set kek_file "
        "in privplate.toml",
    )
    generation = data.get("generation")
    try:
        key = decode_key(data, "key", KEK_BYTES)
        if type(generation) is not int or generation < 1:
            raise ValueError("generation must be a positive integer")
    except ValueError as exc:
        raise ConfigError(f"key-encryption key file {path} is malformed ({exc})") from None
    return Kek(generation=generation, key=key)


def write_kek(path: Path, kek: Kek) -> None:
    """Write ``kek`` to ``path`` atomically with mode 0600."""
    body = json.dumps(
        {
            "format": _FORMAT,
            "version": 1,
            "generation": kek.generation,
            "key": base64.b64encode(kek.key).decode("ascii"),
        }
    ).encode("utf-8")
    write_private_file(path, body)


def write_private_file(path: Path, body: bytes) -> None:
    """Atomically replace ``path`` with ``body``, readable only by this user (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def promote_next(path: Path) -> None:
    """Make the staged next KEK the current one (last step of a rotation)."""
    os.replace(next_path(path), path)
    _fsync_dir(path.parent)


def discard_next(path: Path) -> None:
    next_path(path).unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def rotation_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock held for the whole of a KEK rotation."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
