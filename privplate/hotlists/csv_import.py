"""CSV import of hotlist entries: ``plate,reason,case_number[,expires_at]`` with a header.

Errors name the line and the column, never the plate.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from privplate.errors import InvalidRequest
from privplate.hotlists.service import EntryIn

REQUIRED = ("plate", "reason", "case_number")
MAX_IMPORT_BYTES = 5_000_000


def parse_entries(text: str) -> list[EntryIn]:
    if len(text.encode("utf-8", "replace")) > MAX_IMPORT_BYTES:
        raise InvalidRequest(f"the CSV is larger than {MAX_IMPORT_BYTES} bytes; split it")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InvalidRequest(
            f"the CSV header must name {', '.join(REQUIRED)} (optionally expires_at); "
            f"missing: {', '.join(missing)}"
        )
    reader.fieldnames = header
    entries: list[EntryIn] = []
    for line, row in enumerate(reader, start=2):
        if None in row:
            raise InvalidRequest(f"line {line} has more fields than the header")
        values = {k: (v or "").strip() for k, v in row.items()}
        if not any(values.values()):
            continue
        expires: datetime | None = None
        if values.get("expires_at"):
            try:
                expires = datetime.fromisoformat(values["expires_at"])
            except ValueError:
                raise InvalidRequest(
                    f"line {line}: expires_at must be an ISO 8601 time with a time zone"
                ) from None
            if expires.tzinfo is None:
                raise InvalidRequest(f"line {line}: expires_at must carry a time zone")
        entries.append(
            EntryIn(
                plate=values["plate"],
                reason=values["reason"],
                case_number=values["case_number"],
                expires_at=expires,
            )
        )
    if not entries:
        raise InvalidRequest("the CSV holds no entries")
    return entries
