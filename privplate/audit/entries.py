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
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


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


def canonical_json(value: Any) -> bytes:
    _check_value(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def encode_entry(entry: Entry) -> bytes:
    return canonical_json(entry.to_json())


def decode_entry(data: bytes) -> Entry:
    """Parse and re-check canonical form: a byte that differs from canonical is tampering."""
    try:
        raw = json.loads(data)
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
    if encode_entry(entry) != data:
        raise AuditError("entry is not in canonical form")
    return entry
