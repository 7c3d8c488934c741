"""A dry run of a CSV import, row by row, for the console's preview step.

``parse_entries`` and ``Hotlists.add_entries`` stop at the first problem, which is right for
an all-or-nothing import but makes a person fix a file one error at a time. The preview runs
the same rules on every row on its own: each row through ``parse_entries`` (as a one-row CSV
under the file's header) and each parsed entry through the service's own entry checks, so a
preview without problems is a file the import accepts (the caps, quotas and duplicates of live
entries are checked once more by the import itself, under its lock). Nothing is written except
what a refused import writes too: an entry refused for a forbidden purpose is recorded and
flagged exactly as ``add_entries`` records it, so the preview is no way to try wording out
unseen. Problems name the row and the rule, never the plate; a row's plate is only ever shown
masked.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from privplate.errors import InvalidPlate, InvalidRequest, PurposeDenied
from privplate.hotlists.csv_import import MAX_IMPORT_BYTES, parse_entries
from privplate.hotlists.service import EntryIn, Hotlists
from privplate.policy.flags import FlagKind

#: csv_import's and the service's messages lead with where they are ("line 2: ", "entry 1: ");
#: in a one-row dry run that place is always the same, so the preview shows its own row number.
_PLACE = re.compile(r"^(line \d+:?|entry \d+:)\s*")
SHOWN = 2  # characters of a plate the preview shows; the rest are masked


@dataclass(frozen=True)
class RowProblem:
    row: int  # the row's line number in the file (the header is line 1)
    reason: str


@dataclass(frozen=True)
class RowEntry:
    row: int
    masked: str = field(repr=False)
    reason: str
    case_number: str
    expires_at: datetime | None


@dataclass(frozen=True)
class ImportPreview:
    entries: list[RowEntry]
    problems: list[RowProblem]
    #: A problem of the whole file (too large, a header without the required columns).
    file_problem: str = ""

    @property
    def importable(self) -> bool:
        return bool(self.entries) and not self.problems and not self.file_problem


def _mask(plate: str) -> str:
    """``7KQ1234`` -> ``7K*****``: enough to tell rows apart, not enough to read a plate."""
    return plate[:SHOWN] + "*" * max(len(plate) - SHOWN, 0)


def _reason(exc: Exception) -> str:
    text = _PLACE.sub("", str(exc))
    if text.startswith("has "):  # "line 2 has more fields than the header"
        return "this row " + text
    return text


def _rows(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and each non-blank record with the file line it ends on."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    return header, rows


def _one_row(header: list[str], record: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerow(record)
    return out.getvalue()


def preview_import(
    hotlists: Hotlists, *, actor: str, hotlist: str, text: str, now: datetime | None = None
) -> ImportPreview:
    now = now or datetime.now(UTC)
    hotlists.get(hotlist)  # NotFound before anything else
    if len(text.encode("utf-8", "replace")) > MAX_IMPORT_BYTES:
        return ImportPreview([], [], f"the CSV is larger than {MAX_IMPORT_BYTES} bytes; split it")
    try:
        parse_entries(text)
    except InvalidRequest as exc:
        if not str(exc).startswith("line "):  # the header, or no rows at all
            return ImportPreview([], [], str(exc))
    header, rows = _rows(text)
    entries: list[RowEntry] = []
    problems: list[RowProblem] = []
    seen: dict[bytes, int] = {}
    for line, record in rows:
        try:
            (entry,) = parse_entries(_one_row(header, record))
            ((canonical, _, _),) = hotlists._validate([entry], now)
        except PurposeDenied as exc:
            hotlists._refused(actor, hotlist, exc, 1, FlagKind.DENIED_HOTLIST_ENTRY)
            problems.append(RowProblem(line, _reason(exc)))
            continue
        except (InvalidPlate, InvalidRequest) as exc:
            problems.append(RowProblem(line, _reason(exc)))
            continue
        mac = hotlists.box.mac(canonical)
        if mac in seen:
            problems.append(
                RowProblem(line, f"the same plate is already on line {seen[mac]} of this file")
            )
            continue
        seen[mac] = line
        entries.append(_shown(line, entry, canonical))
    return ImportPreview(entries, problems)


def _shown(line: int, entry: EntryIn, canonical: str) -> RowEntry:
    return RowEntry(line, _mask(canonical), entry.reason, entry.case_number, entry.expires_at)
