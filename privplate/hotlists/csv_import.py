"""CSV import of hotlist entries: ``plate,reason,case_number[,expires_at]`` with a header.

Files from elsewhere (a state hotlist extract, a labelled photo set) often carry other columns
and no reason or case number: the import can pick the rows whose column has a value
(``where``), take the first ``limit`` of them, and apply one reason and case number to rows
that have none. Errors name the line and the column, never the plate.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from privplate.errors import InvalidRequest
from privplate.hotlists.service import EntryIn

REQUIRED = ("plate", "reason", "case_number")
MAX_IMPORT_BYTES = 5_000_000


@dataclass(frozen=True)
class ImportOptions:
    #: Only rows whose column (header name) has this value, e.g. ("region", "eu").
    where: tuple[str, str] | None = None
    #: Only the first this many selected rows.
    limit: int | None = None
    #: Applied to rows without a reason / case number of their own.
    reason: str = ""
    case_number: str = ""

    @classmethod
    def parse_where(cls, text: str) -> tuple[str, str]:
        column, sep, value = text.partition("=")
        if not sep or not column.strip():
            raise InvalidRequest("a row filter is COLUMN=VALUE, e.g. region=eu")
        return column.strip().lower(), value.strip()


def parse_entries(text: str, options: ImportOptions | None = None) -> list[EntryIn]:
    options = options or ImportOptions()
    if len(text.encode("utf-8", "replace")) > MAX_IMPORT_BYTES:
        raise InvalidRequest(f"the CSV is larger than {MAX_IMPORT_BYTES} bytes; split it")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    defaults = {"reason": options.reason.strip(), "case_number": options.case_number.strip()}
    missing = [c for c in REQUIRED if c not in header and not defaults.get(c)]
    if options.where is not None and options.where[0] not in header:
        raise InvalidRequest(f"the CSV has no column {options.where[0]!r} to select rows by")
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
        if options.where is not None and values.get(options.where[0]) != options.where[1]:
            continue
        if options.limit is not None and len(entries) >= options.limit:
            break
        for column, default in defaults.items():
            if not values.get(column):
                values[column] = default
        expires = _expiry(values.get("expires_at", ""), line)
        entries.append(
            EntryIn(
                plate=values["plate"],
                reason=values["reason"],
                case_number=values["case_number"],
                expires_at=expires,
                imported=True,
            )
        )
    if not entries:
        raise InvalidRequest("the CSV holds no entries")
    return entries


def _expiry(text: str, line: int) -> datetime | None:
    if not text:
        return None
    try:
        expires = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"line {line}: expires_at must be an ISO 8601 time with a time zone"
        ) from None
    if expires.tzinfo is None:
        raise InvalidRequest(f"line {line}: expires_at must carry a time zone")
    return expires
