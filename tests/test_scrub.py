"""Zeroing free space inside SQLite pages (privplate.store.scrub), on planted leftovers.

The purge's forensic tests show the end result on real data; these pin the mechanism down:
bytes planted in a page's unallocated space or in a free block are found and zeroed, live rows
and indexes are untouched, and writers running at the same time lose nothing.
"""

from __future__ import annotations

import os
import struct
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlean

from privplate.store.lock_budget import LockBudget
from privplate.store.scrub import cleaned_page, scrub_free_space

SECRET = b"PURGED-TOKEN-0123456789abcdef"


def connect(path: Path, *, secure_delete: bool = True) -> sqlean.Connection:
    conn = sqlean.connect(str(path), isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA secure_delete={'ON' if secure_delete else 'OFF'}")
    return conn


def filled(path: Path, rows: int = 3000) -> sqlean.Connection:
    conn = connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, token BLOB, note TEXT)")
    conn.execute("CREATE INDEX ix_token ON t (token)")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO t (token, note) VALUES (?, ?)",
        [(os.urandom(16), f"row {i}") for i in range(rows)],
    )
    conn.execute("COMMIT")
    return conn


def page(conn: sqlean.Connection, pgno: int) -> bytes:
    row = conn.execute("SELECT data FROM sqlite_dbpage WHERE pgno = ?", (pgno,)).fetchone()
    return bytes(row[0])


def put_page(conn: sqlean.Connection, pgno: int, data: bytes) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE sqlite_dbpage SET data = ? WHERE pgno = ?", (data, pgno))
    conn.execute("COMMIT")


def leaf_pages(conn: sqlean.Connection, name: str) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", (name,)
        )
    ]


def gap(data: bytes, pgno: int) -> tuple[int, int]:
    hdr = 100 if pgno == 1 else 0
    size = 8 if data[hdr] in (0x0A, 0x0D) else 12
    cells, content = struct.unpack_from(">HH", data, hdr + 3)
    return hdr + size + 2 * cells, content or 65536


def room(data: bytes, pgno: int) -> int:
    start, end = gap(data, pgno)
    return end - start


def plant_in_gap(conn: sqlean.Connection, pgno: int) -> None:
    data = bytearray(page(conn, pgno))
    start, end = gap(bytes(data), pgno)
    assert end - start > len(SECRET), "the test needs a page with room in its gap"
    data[start + 3 : start + 3 + len(SECRET)] = SECRET
    put_page(conn, pgno, bytes(data))


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


def checkpoint(conn: sqlean.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def contents(conn: sqlean.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT id, token, note FROM t ORDER BY id").fetchall()


def test_leftovers_in_the_gap_of_table_and_index_pages_are_zeroed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = filled(path)
    # Half-empty pages (deletes without secure_delete leave room and free blocks).
    conn.execute("DELETE FROM t WHERE id % 3 = 0")
    targets = leaf_pages(conn, "t")[:3] + leaf_pages(conn, "ix_token")[:3]
    roomy = [p for p in targets if room(page(conn, p), p) > 40]
    assert len(roomy) >= 2
    for pgno in roomy:
        plant_in_gap(conn, pgno)
    before = contents(conn)
    checkpoint(conn)
    assert SECRET in file_bytes(path), "the scan must see the planted bytes first"

    report = scrub_free_space(conn)

    checkpoint(conn)
    assert SECRET not in file_bytes(path)
    assert report.pages_cleaned >= len(roomy)
    assert contents(conn) == before
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # A second pass finds nothing left to do.
    assert scrub_free_space(conn).pages_cleaned == 0


def test_deleted_cells_in_free_blocks_are_zeroed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = filled(path)
    marker = b"FREEBLOCK-LEFTOVER-" + os.urandom(8).hex().encode()
    conn.execute("UPDATE t SET note = ? WHERE id = 1500", (marker.decode(),))
    conn.execute("PRAGMA secure_delete=OFF")  # leave the deleted cell's bytes in place
    conn.execute("DELETE FROM t WHERE id = 1500")
    checkpoint(conn)
    assert marker in file_bytes(path)

    scrub_free_space(conn)

    checkpoint(conn)
    assert marker not in file_bytes(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_cleaned_page_leaves_non_btree_and_clean_pages_alone(tmp_path: Path) -> None:
    conn = filled(tmp_path / "s.db", rows=10)
    conn.execute("INSERT INTO t (token, note) VALUES (?, ?)", (b"x", "y" * 20_000))  # overflow
    overflow = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE pagetype = 'overflow'")]
    assert overflow
    assert all(cleaned_page(page(conn, p), p) is None for p in overflow)
    assert cleaned_page(page(conn, 1), 1) is None  # the schema page, header at offset 100
    dirty = bytearray(page(conn, 1))
    start, _ = gap(bytes(dirty), 1)
    dirty[start : start + 4] = b"\xff\xff\xff\xff"
    fixed = cleaned_page(bytes(dirty), 1)
    assert fixed == page(conn, 1)


def test_writers_during_a_scrub_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = filled(path, rows=20_000)
    conn.execute("DELETE FROM t WHERE id % 2 = 0")
    for pgno in leaf_pages(conn, "ix_token")[:40]:
        if room(page(conn, pgno), pgno) > len(SECRET) + 3:
            plant_in_gap(conn, pgno)
    stop = threading.Event()
    written: list[bytes] = []

    def writer() -> None:
        other = connect(path)
        while not stop.is_set():
            token = os.urandom(16)
            other.execute("INSERT INTO t (token, note) VALUES (?, 'concurrent')", (token,))
            written.append(token)
        other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        report = scrub_free_space(conn, LockBudget(target=0.005, pause=0.001))
    finally:
        stop.set()
        thread.join()
    assert report.transactions >= 1
    stored = {r[0] for r in conn.execute("SELECT token FROM t WHERE note = 'concurrent'")}
    assert stored == set(written) and written
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    scrub_free_space(conn)
    checkpoint(conn)
    assert SECRET not in file_bytes(path)


def test_a_build_without_sqlite_dbpage_is_named(tmp_path: Path) -> None:
    import sqlite3

    from privplate.store.scrub import ScrubUnavailable

    conn = sqlite3.connect(str(tmp_path / "plain.db"), isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    has_dbpage = True
    try:
        conn.execute("SELECT 1 FROM sqlite_dbpage LIMIT 1")
    except sqlite3.OperationalError:
        has_dbpage = False
    if has_dbpage:
        pytest.skip("this Python's own sqlite3 has sqlite_dbpage")
    with pytest.raises(ScrubUnavailable, match="sqlite_dbpage"):
        scrub_free_space(conn)


def test_the_tree_walk_finds_every_btree_page_and_no_other(tmp_path: Path) -> None:
    from privplate.store.scrub import _dirty_pages, _roots

    conn = filled(tmp_path / "s.db", rows=20_000)
    conn.execute("CREATE TABLE other (x TEXT)")
    conn.executemany("INSERT INTO other VALUES (?)", [("z" * 9_000,) for _ in range(50)])
    expected = {
        r[0]
        for r in conn.execute("SELECT pageno FROM dbstat WHERE pagetype IN ('internal', 'leaf')")
    }
    conn.execute("BEGIN")
    walked, _ = _dirty_pages(conn, _roots(conn, None))
    only_t, _ = _dirty_pages(conn, _roots(conn, {"t"}))
    conn.execute("COMMIT")
    assert walked == len(expected)
    in_t = conn.execute(
        "SELECT count(*) FROM dbstat WHERE name IN ('t', 'ix_token') "
        "AND pagetype IN ('internal', 'leaf')"
    ).fetchone()[0]
    assert only_t == in_t


def test_vacuum_step_ends_on_a_file_without_incremental_auto_vacuum(tmp_path: Path) -> None:
    """A file made by another tool (auto_vacuum NONE) ignores incremental_vacuum: the purge's
    vacuum step must notice that nothing moves instead of looping."""
    from privplate.retention.purge import PurgeReport
    from privplate.store.purging import _sqlite_vacuum

    conn = filled(tmp_path / "plain.db", rows=5_000)  # auto_vacuum is NONE by default
    conn.execute("DELETE FROM t WHERE id > 100")
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] > 0
    report = PurgeReport(started_at=datetime.now(UTC))
    _sqlite_vacuum(conn, report, lambda: None)  # returns (the test would hang otherwise)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
