"""Helpers that look for plate text where it must never be."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import make_url

from privplate.errors import InvalidPlate
from privplate.tokens import canonical_plate


def needles(plates: Iterable[str]) -> set[bytes]:
    """Every byte form in which a plate could leak: as typed, canonical, lower, UTF-16."""
    found: set[bytes] = set()
    for plate in plates:
        try:
            canonical = canonical_plate(plate)
        except InvalidPlate:  # a malformed plate a test typed, to see it refused
            canonical = plate.upper()
        for form in {plate, canonical, canonical.lower()}:
            found.add(form.encode("utf-8"))
            found.add(form.encode("utf-16-le"))
    return found


#: A bytea value in pg_dump's COPY text: ``\\x`` then hex digits.
_BYTEA = re.compile(rb"\\\\x((?:[0-9a-f]{2})+)")


def _decode_bytea(data: bytes) -> bytes:
    """pg_dump writes binary columns as lower-case hex, where an all-hex plate such as 2DA044
    (as "2da044") turns up by chance about once in 16M positions; scan the bytes they stand
    for instead (which is also where a plate stored as bytes would be)."""
    return _BYTEA.sub(lambda m: b"\0" + bytes.fromhex(m.group(1).decode()) + b"\0", data)


def hits_in_bytes(data: bytes, plates: Iterable[str]) -> list[str]:
    data = _decode_bytea(data)
    return [n.decode("utf-8", "replace") for n in needles(plates) if n in data]


def hits_in_files(paths: Iterable[Path], plates: Iterable[str]) -> dict[str, list[str]]:
    report: dict[str, list[str]] = {}
    for path in paths:
        if path.is_file():
            hits = hits_in_bytes(path.read_bytes(), plates)
            if hits:
                report[str(path)] = hits
    return report


def dump_database(url: str) -> bytes:
    """The bytes an attacker with a backup would hold: the SQLite files, or a pg_dump."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        db = Path(str(parsed.database))
        return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())
    options = unquote(str(parsed.query.get("options", "")))
    schema = options.split("search_path=")[-1] if "search_path=" in options else "public"
    return subprocess.run(
        [
            "pg_dump",
            "-h",
            parsed.host or "127.0.0.1",
            "-p",
            str(parsed.port or 5432),
            "-U",
            parsed.username or "postgres",
            "-n",
            schema,
            "--data-only",
            str(parsed.database),
        ],
        check=True,
        capture_output=True,
    ).stdout
