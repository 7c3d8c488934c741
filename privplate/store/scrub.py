"""Zero the free space inside SQLite b-tree pages, so deleted values leave the file.

``secure_delete`` zeroes a cell when it is deleted and a page when it is freed, but when SQLite
rebuilds a page during a rebalance it leaves the old bytes in the page's unallocated space (the
gap between the cell-pointer array and the cell content). Those bytes are copies of cells that
were live then and moved to a sibling page; once such a cell is deleted, its copy survives. On
a store that purges reads by time while keeping hits and held reads, that is where purged tokens
were found (SQLite 3.40 to 3.54 alike).

This module finds b-tree pages whose unallocated space or free blocks hold anything but zeros
and rewrites them through the ``sqlite_dbpage`` virtual table with those regions zeroed. Only
bytes SQLite treats as free change, so no row or index entry changes. The scan runs in a read
transaction (writers go on); the rewrites run in short write transactions sized to stay near
a target lock time, and re-read each page inside the lock, so pages changed since the scan are
handled from their current content.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Iterator
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
    """The SQLite library lacks sqlite_dbpage or dbstat."""


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


def _btree_pages(conn: DriverConnection) -> list[int]:
    try:
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE pagetype IN ('internal', 'leaf') ORDER BY pageno"
        ).fetchall()
        conn.execute("SELECT pgno FROM sqlite_dbpage WHERE pgno = 1").fetchall()
    except Exception as exc:  # the driver's OperationalError; no shared base class to name
        if "no such table" in str(exc):
            raise ScrubUnavailable(
                "this SQLite build lacks the dbstat or sqlite_dbpage virtual table"
            ) from None
        raise
    return [int(r[0]) for r in rows]


def _page(conn: DriverConnection, pgno: int) -> bytes | None:
    row = conn.execute("SELECT data FROM sqlite_dbpage WHERE pgno = ?", (pgno,)).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None


def _dirty_pages(conn: DriverConnection, pages: Iterable[int]) -> list[int]:
    dirty = []
    for pgno in pages:
        page = _page(conn, pgno)
        if page is not None and cleaned_page(page, pgno) is not None:
            dirty.append(pgno)
    return dirty


def scrub_free_space(conn: DriverConnection, budget: LockBudget | None = None) -> ScrubReport:
    """Zero the free space of every b-tree page of the main database.

    ``conn`` is a DB-API connection in autocommit mode (``isolation_level = None``) outside any
    transaction, on a SQLite build with ``sqlite_dbpage`` (sqlean.py ships one).
    """
    started = time.perf_counter()
    budget = budget or LockBudget()
    report = ScrubReport()
    conn.execute("BEGIN")  # one snapshot for the scan; a read transaction blocks no writer
    try:
        pages = _btree_pages(conn)
        dirty = _dirty_pages(conn, pages)
    finally:
        conn.execute("COMMIT")
    report.pages_scanned = len(pages)
    batch, done = 64, 0
    while done < len(dirty):
        chunk = dirty[done : done + batch]
        lock_started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
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
