"""Zero the free space inside SQLite b-tree pages, so deleted values leave the file.

``secure_delete`` zeroes a cell when it is deleted and a page when it is freed, but when SQLite
rebuilds a page during a rebalance it leaves the old bytes in the page's unallocated space (the
gap between the cell-pointer array and the cell content). Those bytes are copies of cells that
were live then and moved to a sibling page; once such a cell is deleted, its copy survives. On
a store that purges reads by time while keeping hits and held reads, that is where purged tokens
were found (SQLite 3.40 to 3.54 alike).

This module walks b-trees page by page and rewrites the pages whose unallocated space or free
blocks hold anything but zeros through the ``sqlite_dbpage`` virtual table, with those regions
zeroed. Only bytes SQLite treats as free change, so no row or index entry changes. The scan
runs in a read transaction (writers go on); the rewrites run in short write transactions sized
to stay near a target lock time, and re-read each page inside the lock, so pages changed since
the scan are handled from their current content.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from privplate.store.lock_budget import LockBudget

#: b-tree page type byte -> page header size (interior pages carry a right-child pointer).
_HEADER_SIZE = {0x02: 12, 0x05: 12, 0x0A: 8, 0x0D: 8}
_FILE_HEADER = 100  # page 1 starts with the database file header


class DriverConnection(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


@dataclass
class ScrubReport:
    pages_scanned: int = 0
    pages_cleaned: int = 0
    transactions: int = 0
    longest_lock_ms: float = 0.0
    seconds: float = 0.0


class ScrubUnavailable(RuntimeError):
    """The SQLite library lacks the sqlite_dbpage table."""


def _free_regions(page: bytes, pgno: int) -> Iterator[tuple[int, int]]:
    """Byte ranges of ``page`` that SQLite considers free: the gap and free-block bodies."""
    hdr = _FILE_HEADER if pgno == 1 else 0
    header_size = _HEADER_SIZE.get(page[hdr])
    if header_size is None:
        return
    first_free, cells, content = struct.unpack_from(">HHH", page, hdr + 1)
    content = content or 65536
    gap_start = hdr + header_size + 2 * cells
    if gap_start < content <= len(page):
        yield gap_start, content
    # Free blocks: a chain of (next offset, size) headers inside the cell content area.
    # The 4-byte header stays; the bounds checks stop on a malformed chain rather than loop.
    offset, hops = first_free, 0
    while offset and hops < len(page) // 4 and offset + 4 <= len(page):
        following, size = struct.unpack_from(">HH", page, offset)
        if size > 4 and offset + size <= len(page):
            yield offset + 4, offset + size
        if following and following <= offset:
            return
        offset, hops = following, hops + 1


def cleaned_page(page: bytes, pgno: int) -> bytes | None:
    """``page`` with its free regions zeroed, or None when they already are (or not a b-tree)."""
    regions = [(a, b) for a, b in _free_regions(page, pgno) if page.count(0, a, b) != b - a]
    if not regions:
        return None
    out = bytearray(page)
    for start, end in regions:
        out[start:end] = bytes(end - start)
    return bytes(out)


def _roots(conn: DriverConnection, tables: Collection[str] | None) -> list[int]:
    """Root pages of the b-trees of ``tables`` (each table and its indexes), or of all."""
    rows = conn.execute("SELECT tbl_name, rootpage FROM sqlite_schema WHERE rootpage > 0")
    found = [int(root) for name, root in rows if tables is None or name in tables]
    return [1, *found] if tables is None else found  # page 1 is sqlite_schema's own root


def _page(conn: DriverConnection, pgno: int) -> bytes | None:
    try:
        row = conn.execute("SELECT data FROM sqlite_dbpage WHERE pgno = ?", (pgno,)).fetchone()
    except Exception as exc:  # the driver's OperationalError; no shared base class to name
        if "no such table" in str(exc):
            raise ScrubUnavailable("this SQLite build lacks the sqlite_dbpage table") from None
        raise
    return bytes(row[0]) if row and row[0] is not None else None


def _children(page: bytes, pgno: int) -> list[int]:
    """Child page numbers of an interior b-tree page (none for a leaf)."""
    hdr = _FILE_HEADER if pgno == 1 else 0
    if page[hdr] not in (0x02, 0x05):
        return []
    cells = struct.unpack_from(">H", page, hdr + 3)[0]
    pointers = struct.unpack_from(f">{cells}H", page, hdr + 12)
    # Every interior cell starts with its left child's number; the right-most is in the header.
    return [
        *(struct.unpack_from(">I", page, p)[0] for p in pointers if p + 4 <= len(page)),
        struct.unpack_from(">I", page, hdr + 8)[0],
    ]


def _dirty_pages(conn: DriverConnection, roots: Iterable[int]) -> tuple[int, list[int]]:
    """Walk the b-trees from ``roots`` (b-tree pages only: overflow pages hold no free space)
    and return (pages walked, pages whose free space is not all zeros)."""
    dirty: list[int] = []
    seen: set[int] = set()
    pending = list(roots)
    while pending:
        pgno = pending.pop()
        if pgno in seen or pgno < 1:
            continue
        seen.add(pgno)
        page = _page(conn, pgno)
        if page is None:
            continue
        if cleaned_page(page, pgno) is not None:
            dirty.append(pgno)
        pending.extend(_children(page, pgno))
    return len(seen), sorted(dirty)


def scrub_free_space(
    conn: DriverConnection,
    budget: LockBudget | None = None,
    *,
    tables: Collection[str] | None = None,
) -> ScrubReport:
    """Zero the free space of the b-tree pages of ``tables`` and their indexes (default: all).

    A leftover copy of a row only ever sits in a page of the row's own b-tree (rebalancing
    moves cells between siblings; a freed page is zeroed whole), so after deleting from some
    tables it is enough to scrub those. ``conn`` is a DB-API connection in autocommit mode
    (``isolation_level = None``) outside any transaction, on a SQLite build with
    ``sqlite_dbpage`` (sqlean.py ships one).
    """
    started = time.perf_counter()
    budget = budget or LockBudget()
    report = ScrubReport()
    conn.execute("BEGIN")  # one snapshot for the scan; a read transaction blocks no writer
    try:
        report.pages_scanned, dirty = _dirty_pages(conn, _roots(conn, tables))
    finally:
        conn.execute("COMMIT")
    batch, done = 64, 0
    while done < len(dirty):
        chunk = dirty[done : done + batch]
        conn.execute("BEGIN IMMEDIATE")
        lock_started = time.perf_counter()  # after waiting for the lock: only the hold counts
        try:
            for pgno in chunk:
                # Re-read under the lock: a writer may have changed the page since the scan.
                page = _page(conn, pgno)
                cleaned = cleaned_page(page, pgno) if page is not None else None
                if cleaned is not None:
                    conn.execute(
                        "UPDATE sqlite_dbpage SET data = ? WHERE pgno = ?", (cleaned, pgno)
                    )
                    report.pages_cleaned += 1
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        held = time.perf_counter() - lock_started
        report.transactions += 1
        report.longest_lock_ms = max(report.longest_lock_ms, held * 1000)
        done += len(chunk)
        batch = budget.done(batch, held, low=16, high=2000)
    report.seconds = time.perf_counter() - started
    return report
