"""Durable local spool: reads wait here (tokens and sealed evidence only) until the server
has them.

A read is committed to the spool before the edge counts it as done. Reads leave in batches:
forming a batch writes its id and exact body bytes in the same transaction that assigns the
reads to it, so a batch that was in flight when the edge died is re-sent byte for byte with
the same id (the server answers such a replay without storing anything twice). Rows are
deleted only after the server acknowledged them. ``secure_delete`` zeroes deleted rows; at most
once a minute after an acknowledgement the spool also zeroes leftover copies inside pages and
empties its WAL (see privplate.store.scrub), so sent tokens do not stay on the box.

For sources that can be read again (files, folders, videos) the spool also keeps where each
camera was (``progress``) and the ids of the reads made since then (``issued``, written in the
transaction that spools the read): after a crash the camera goes on from there and a read made
again under the same id is recognised and not spooled twice (privplate.edge.runner).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlean

from privplate.devices.batches import IngestBatch, WireEvidence, WireRead
from privplate.edge.reads import EdgeRead
from privplate.errors import StoreError
from privplate.store.lock_budget import LockBudget
from privplate.store.scrub import ScrubReport, scrub_free_space

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    read_id TEXT NOT NULL UNIQUE,
    read_json TEXT NOT NULL,
    evidence_json TEXT,
    batch_id TEXT
);
CREATE INDEX IF NOT EXISTS reads_batch ON reads (batch_id);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS set_aside (
    batch_id TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    reads INTEGER NOT NULL,
    reason TEXT NOT NULL,
    set_aside_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS issued (
    read_id TEXT PRIMARY KEY,
    camera TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS issued_camera ON issued (camera);
"""


log = logging.getLogger(__name__)
#: Above this many waiting reads the periodic scrub waits for the spool to drain.
SCRUB_MAX_DEPTH = 2000


@dataclass(frozen=True)
class SpooledBatch:
    batch_id: uuid.UUID
    body: bytes
    reads: int
    attempts: int


class Spool:
    def __init__(self, path: Path, *, scrub_every_seconds: float = 60.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._scrub_every = scrub_every_seconds
        self._scrubbed_at = float("-inf")
        try:
            self._db = self._connect()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a committed read survives power loss
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(reads)")}
            if "spooled_at" not in columns:  # spools made before it was recorded
                self._db.execute("ALTER TABLE reads ADD COLUMN spooled_at REAL")
        except sqlean.Error as exc:
            raise StoreError(f"edge spool {path} cannot be opened ({type(exc).__name__})") from None
        path.chmod(0o600)

    def _connect(self) -> sqlean.Connection:
        return sqlean.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)

    def scrub(self) -> ScrubReport:
        """Zero leftover bytes inside the spool's pages, then empty its WAL.

        On a connection of its own, so the pipeline's inserts (on the main connection) only
        wait for SQLite's write lock, one short transaction at a time.
        """
        conn = self._connect()
        try:
            conn.execute("PRAGMA secure_delete=ON")
            report = scrub_free_space(conn, LockBudget(pause=0.005))
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()
        self._scrubbed_at = time.monotonic()
        return report

    def _scrub_if_due(self) -> None:
        # A backlog (the server was down) is not rescanned every minute while it drains: the
        # scan reads every page, evidence included. It is scrubbed once it is small again.
        due = time.monotonic() - self._scrubbed_at >= self._scrub_every
        if due and self.depth() <= SCRUB_MAX_DEPTH:
            try:
                self.scrub()
            except Exception as exc:  # the uplink must go on; the next interval tries again
                self._scrubbed_at = time.monotonic()
                log.warning("spool: zeroing free space failed (%s); retrying later", exc)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, item: EdgeRead, *, camera: str | None = None) -> None:
        """Spool a read; with ``camera``, also note its id as issued for that camera's
        resume (in the same transaction, so a crash keeps both or neither)."""
        read = item.read
        wire = IngestBatch.from_store(
            uuid.UUID(int=0), [read], [item.evidence] if item.evidence else []
        )
        evidence_json = wire.evidence[0].model_dump_json() if wire.evidence else None
        row = (str(read.read_id), wire.reads[0].model_dump_json(), evidence_json, time.time())
        insert = (
            "INSERT OR IGNORE INTO reads (read_id, read_json, evidence_json, spooled_at) "
            "VALUES (?, ?, ?, ?)"
        )
        with self._lock:
            if camera is None:
                self._db.execute(insert, row)
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(insert, row)
                self._db.execute(
                    "INSERT OR IGNORE INTO issued (read_id, camera) VALUES (?, ?)",
                    (str(read.read_id), camera),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def issued(self, read_id: uuid.UUID) -> bool:
        """Was this read made (and spooled) since its camera's last resume point?"""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM issued WHERE read_id = ?", (str(read_id),)
            ).fetchone()
        return row is not None

    def progress(self, camera: str) -> dict[str, object] | None:
        """Where ``camera``'s replayable source was at its last resume point."""
        value = self.get_state(f"progress {camera}")
        if value is None:
            return None
        try:
            loaded = json.loads(value)
        except ValueError:
            return None
        return loaded if isinstance(loaded, dict) else None

    def save_progress(self, camera: str, progress: dict[str, object] | None) -> None:
        """Record ``camera``'s resume point (None forgets it) and forget the reads issued
        before it: every read up to there is spooled, so none will be made again."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if progress is None:
                    self._db.execute("DELETE FROM state WHERE name = ?", (f"progress {camera}",))
                else:
                    self._db.execute(
                        "INSERT INTO state (name, value) VALUES (?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                        (f"progress {camera}", json.dumps(progress, sort_keys=True).encode()),
                    )
                self._db.execute("DELETE FROM issued WHERE camera = ?", (camera,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def read_id_namespace(self) -> uuid.UUID:
        """This spool's own random namespace for read ids of replayable frames: the ids are
        stable across restarts of this edge, unguessable to anyone else."""
        value = self.get_state("read id namespace")
        if value is None:
            self.set_state("read id namespace", uuid.uuid4().bytes)
            value = self.get_state("read id namespace")
        assert value is not None  # noqa: S101 - just written
        return uuid.UUID(bytes=value)

    def depth(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM reads").fetchone()
        return int(row[0])

    def oldest_age(self, now: float | None = None) -> float | None:
        """Seconds the oldest waiting read has been in the spool (None: empty)."""
        with self._lock:
            row = self._db.execute("SELECT min(spooled_at), count(*) FROM reads").fetchone()
        if not row[1]:
            return None
        if row[0] is None:
            return 0.0  # rows spooled before spooled_at was recorded
        return max(0.0, (time.time() if now is None else now) - float(row[0]))

    def next_batch(self, max_reads: int) -> SpooledBatch | None:
        """The batch in flight, if one is; else a new one from the oldest waiting reads."""
        with self._lock:
            row = self._db.execute(
                "SELECT batch_id, body, attempts FROM batches ORDER BY created_at LIMIT 1"
            ).fetchone()
            if row is not None:
                count = self._db.execute(
                    "SELECT count(*) FROM reads WHERE batch_id = ?", (row[0],)
                ).fetchone()[0]
                return SpooledBatch(uuid.UUID(row[0]), bytes(row[1]), int(count), int(row[2]))
            rows = self._db.execute(
                "SELECT seq, read_json, evidence_json FROM reads WHERE batch_id IS NULL "
                "ORDER BY seq LIMIT ?",
                (max_reads,),
            ).fetchall()
            if not rows:
                return None
            batch = IngestBatch(
                batch_id=uuid.uuid4(),
                reads=[WireRead.model_validate_json(r[1]) for r in rows],
                evidence=[WireEvidence.model_validate_json(r[2]) for r in rows if r[2]],
            )
            body = batch.model_dump_json().encode()
            batch_id = str(batch.batch_id)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO batches (batch_id, body, created_at) VALUES (?, ?, ?)",
                    (batch_id, body, time.time()),
                )
                self._db.executemany(
                    "UPDATE reads SET batch_id = ? WHERE seq = ?", [(batch_id, r[0]) for r in rows]
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return SpooledBatch(batch.batch_id, body, len(rows), 0)

    def attempted(self, batch_id: uuid.UUID) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE batches SET attempts = attempts + 1 WHERE batch_id = ?", (str(batch_id),)
            )

    def acknowledge(self, batch_id: uuid.UUID) -> None:
        """The server stored the batch: forget it and its reads."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM reads WHERE batch_id = ?", (str(batch_id),))
                self._db.execute("DELETE FROM batches WHERE batch_id = ?", (str(batch_id),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._scrub_if_due()

    def release(self, batch_id: uuid.UUID) -> int:
        """Undo a batch not yet delivered: its reads wait again, to go out in other batches
        (one too large for the server); how many reads it held."""
        key = str(batch_id)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._db.execute(
                    "UPDATE reads SET batch_id = NULL WHERE batch_id = ?", (key,)
                ).rowcount
                self._db.execute("DELETE FROM batches WHERE batch_id = ?", (key,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(count)

    def set_aside(self, batch_id: uuid.UUID, reason: str) -> None:
        """A batch the server refused as it is: keep its bytes apart so the rest can flow."""
        key = str(batch_id)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                count = self._db.execute(
                    "SELECT count(*) FROM reads WHERE batch_id = ?", (key,)
                ).fetchone()[0]
                self._db.execute(
                    "INSERT OR REPLACE INTO set_aside (batch_id, body, reads, reason, set_aside_at)"
                    " SELECT batch_id, body, ?, ?, ? FROM batches WHERE batch_id = ?",
                    (count, reason[:500], time.time(), key),
                )
                self._db.execute("DELETE FROM reads WHERE batch_id = ?", (key,))
                self._db.execute("DELETE FROM batches WHERE batch_id = ?", (key,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def set_aside_count(self) -> tuple[int, int]:
        """(batches, reads) set aside."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*), coalesce(sum(reads), 0) FROM set_aside"
            ).fetchone()
        return int(row[0]), int(row[1])

    def retry_set_aside(self) -> int:
        """Queue the set-aside batches again, same ids and bytes (the server cannot store a
        read twice). Their reads are counted in ``depth`` once more only as batches."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                moved = self._db.execute(
                    "INSERT OR IGNORE INTO batches (batch_id, body, created_at) "
                    "SELECT batch_id, body, set_aside_at FROM set_aside"
                ).rowcount
                self._db.execute("DELETE FROM set_aside")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(moved)

    def drop_set_aside_before(self, cutoff: float) -> int:
        """Forget set-aside batches older than ``cutoff`` (Unix time): the spool is no archive."""
        with self._lock:
            return int(
                self._db.execute("DELETE FROM set_aside WHERE set_aside_at < ?", (cutoff,)).rowcount
            )

    def get_state(self, name: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return bytes(row[0]) if row else None

    def set_state(self, name: str, value: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO state (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
