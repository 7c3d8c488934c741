"""Audit entries: canonical JSON, so that the same entry always hashes to the same leaf.

Canonical form: UTF-8 JSON with keys sorted, no insignificant white space, ASCII only (other
characters escaped), and no floating-point numbers (their text form is not canonical across
implementations). Values are strings, integers, booleans, null, lists and objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from privplate.errors import AuditError

ENTRY_VERSION = 1
_MAX_DEPTH = 6


@dataclass(frozen=True)
class Entry:
    seq: int
    time: datetime
    actor: str
    action: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "v": ENTRY_VERSION,
            "seq": self.seq,
            "time": format_time(self.time),
            "actor": self.actor,
            "action": self.action,
            "details": self.details,
        }


def format_time(moment: datetime) -> str:
    """``2026-11-22T10:00:00.000000Z``: UTC, always six fraction digits."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or format_time(moment) != text:
        raise ValueError("time must be UTC in the form 2026-11-22T10:00:00.000000Z")
    return moment.astimezone(UTC)


def _check_value(value: Any, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise AuditError("audit details are nested too deeply")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise AuditError("audit details may not contain floats; store integers or strings")
    if isinstance(value, list | tuple):
        for item in value:
            _check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditError("audit detail keys must be strings")
            _check_value(item, depth + 1)
        return
    raise AuditError(f"audit details may not contain {type(value).__name__} values")


def canonical_json(value: Any, *, checked: bool = False) -> bytes:
    """``checked`` skips the value walk for data that came from :func:`_loads` (no floats)."""
    if not checked:
        _check_value(value)
    return _ENCODER.encode(value).encode("ascii")


def encode_entry(entry: Entry, *, checked: bool = False) -> bytes:
    return canonical_json(entry.to_json(), checked=checked)


def _no_floats(text: str) -> float:
    raise ValueError(f"floats are not allowed in audit entries ({text})")


# parse_float rejects floats while parsing, so a decoded value needs no second walk.
_DECODER = json.JSONDecoder(parse_float=_no_floats)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _loads(data: bytes) -> Any:
    return _DECODER.decode(data.decode("utf-8"))


def decode_entry(data: bytes) -> Entry:
    """Parse and re-check canonical form: a byte that differs from canonical is tampering."""
    try:
        raw = _loads(data)
        entry = Entry(
            seq=int(raw["seq"]),
            time=parse_time(raw["time"]),
            actor=str(raw["actor"]),
            action=str(raw["action"]),
            details=dict(raw["details"]),
        )
        if raw.get("v") != ENTRY_VERSION or set(raw) != {
            "v",
            "seq",
            "time",
            "actor",
            "action",
            "details",
        }:
            raise ValueError("unexpected fields")
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditError(f"entry is not valid audit JSON ({exc})") from None
    if encode_entry(entry, checked=True) != data:
        raise AuditError("entry is not in canonical form")
    return entry
