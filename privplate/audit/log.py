"""The append-only audit log on the store.

``append`` runs on the caller's connection, inside the caller's transaction, so an action and
its audit entry commit together or not at all. Appends are serialized (SQLite's write lock, a
PostgreSQL advisory lock) so sequence numbers have no gaps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from privplate.audit.entries import Entry, decode_entry, encode_entry
from privplate.audit.merkle import MerkleTree, leaf_hash
from privplate.audit.signing import FORMAT_NOTE, AuditSigner, Checkpoint, sign_checkpoint
from privplate.errors import AuditError
from privplate.store.database import Database
from privplate.store.models import AuditCheckpoint, AuditEntry

_APPEND_LOCK = 7451003
#: Database.lock_subject name serializing checkpoint signers (one checkpoint per tree size).
_CHECKPOINT_LOCK = "audit.checkpoint"
_COLUMNS = "seq, created_at, actor, action, entry, leaf_hash, mac"
#: Indexed by "is PostgreSQL": the drivers' placeholder styles differ.
_INSERT_SQL = {
    False: f"INSERT INTO audit_entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
    True: f"INSERT INTO audit_entries ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
}
# Built once: constructing Core statements per call costs more than executing them.
_MAX_SEQ = select(func.max(AuditEntry.seq))
_ACTION_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")


@dataclass(frozen=True)
class StoredEntry:
    seq: int
    created_at: datetime
    actor: str
    action: str
    entry: Entry | None  # None once pruned


def _check_names(actor: str, action: str) -> None:
    if not action or set(action) - _ACTION_CHARS:
        raise AuditError("audit action must be lower-case letters, digits, '.', '_' or '-'")
    if not actor:
        raise AuditError("every audit entry needs an actor")


class AuditLog:
    def __init__(self, db: Database, signer: AuditSigner) -> None:
        self.db = db
        self.signer = signer
        self._tree = MerkleTree()
        self._tree_lock = threading.Lock()

    # -- appending ---------------------------------------------------------------------------

    def append(
        self,
        conn: Connection,
        *,
        actor: str,
        action: str,
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Entry:
        """Append one entry in ``conn``'s transaction; raises AuditError (and the caller's
        transaction must then roll back) if it cannot be recorded."""
        _check_names(actor, action)
        if not conn.in_transaction():
            raise AuditError("audit entries are appended inside the action's transaction")
        # Straight to the driver, inside the caller's transaction: appends sit on the path of
        # every privileged action, and SQLAlchemy's statement machinery would double their cost.
        return self._append_on(
            conn.connection.driver_connection, actor=actor, action=action, details=details, now=now
        )

    def _append_on(
        self,
        driver: Any,
        *,
        actor: str,
        action: str,
        details: dict[str, Any] | None,
        now: datetime | None,
    ) -> Entry:
        cursor = driver.cursor()
        try:
            if self.db.is_postgres:
                cursor.execute(f"SELECT pg_advisory_xact_lock({_APPEND_LOCK})")
            cursor.execute("SELECT max(seq) FROM audit_entries")
            last = cursor.fetchone()[0]
            seq = 0 if last is None else int(last) + 1
            moment = (now or datetime.now(UTC)).astimezone(UTC)
            entry = Entry(seq=seq, time=moment, actor=actor, action=action, details=details or {})
            data = encode_entry(entry)
            leaf = leaf_hash(data)
            stored_time: object = moment
            if self.db.is_sqlite:  # the text form UTCDateTime writes on SQLite
                stored_time = moment.replace(tzinfo=None).isoformat(" ", "microseconds")
            cursor.execute(
                _INSERT_SQL[self.db.is_postgres],
                (seq, stored_time, actor, action, data, leaf, self.signer.entry_mac(seq, leaf)),
            )
        finally:
            cursor.close()
        return entry

    @staticmethod
    def _next_seq(conn: Connection) -> int:
        last = conn.execute(_MAX_SEQ).scalar()
        return 0 if last is None else int(last) + 1

    def record(self, *, actor: str, action: str, details: dict[str, Any] | None = None) -> Entry:
        """Append in a transaction of its own (for events that change nothing else)."""
        if not self.db.is_sqlite:
            with self.db.write() as conn:
                return self.append(conn, actor=actor, action=action, details=details)
        _check_names(actor, action)
        # SQLite: one pooled driver connection and an explicit BEGIN IMMEDIATE ... COMMIT, so a
        # standalone entry costs no more than the two statements it runs.
        raw = self.db.engine.raw_connection()
        try:
            driver: Any = raw.driver_connection
            driver.execute("BEGIN IMMEDIATE")
            try:
                entry = self._append_on(
                    driver, actor=actor, action=action, details=details, now=None
                )
                driver.execute("COMMIT")
            except BaseException:
                driver.execute("ROLLBACK")
                raise
            return entry
        finally:
            raw.close()

    # -- the tree ----------------------------------------------------------------------------

    def tree(self) -> MerkleTree:
        """The Merkle tree over every stored leaf hash, cached and extended incrementally."""
        with self._tree_lock, self.db.read() as conn:
            rows = conn.execute(
                select(AuditEntry.seq, AuditEntry.leaf_hash)
                .where(AuditEntry.seq >= self._tree.size)
                .order_by(AuditEntry.seq)
            )
            for seq, leaf in rows:
                if seq != self._tree.size:
                    raise AuditError(f"audit log has a gap before entry #{seq}: run audit verify")
                self._tree.append(bytes(leaf))
            return self._tree

    def size(self) -> int:
        with self.db.read() as conn:
            last = conn.execute(_MAX_SEQ).scalar()
        return 0 if last is None else int(last) + 1

    def leaf(self, seq: int) -> bytes:
        with self.db.read() as conn:
            found = conn.execute(select(AuditEntry.leaf_hash).where(AuditEntry.seq == seq)).scalar()
        if found is None:
            raise AuditError(f"audit entry #{seq} does not exist")
        return bytes(found)

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> list[bytes]:
        tree = self.tree()
        return tree.inclusion_proof(seq, tree_size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return self.tree().consistency_proof(old_size, new_size)

    # -- checkpoints -------------------------------------------------------------------------

    def sign_if_grown(
        self, *, now: datetime | None = None, first_only: bool = False
    ) -> Checkpoint | None:
        """Sign the current tree head and store it, if the log holds entries that no stored
        checkpoint of this key covers; None when there is nothing new to sign (an empty log, or
        one no larger than the latest checkpoint). ``first_only``: sign only if this key has
        signed none yet (the server's start).

        The one rule for every signer, `privplate audit checkpoint` and the server's timer
        alike. The check and the insert run under one lock (an advisory lock on PostgreSQL,
        the write lock on SQLite), so signers in several processes at once store one
        checkpoint per tree size, never two.
        """
        # The tree is read before the lock, so the lock is held for a query and an insert.
        # A signer that read a smaller tree than the one stored meanwhile signs nothing.
        tree = self.tree()
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        with self.db.write() as conn:
            self.db.lock_subject(conn, _CHECKPOINT_LOCK)
            # Only notes count: after the upgrade to notes the first run signs one even at a
            # size a format 1 checkpoint covers, so witnesses get a note without waiting.
            covered = conn.execute(
                select(func.max(AuditCheckpoint.tree_size)).where(
                    AuditCheckpoint.public_key == self.signer.public_key,
                    AuditCheckpoint.format == FORMAT_NOTE,
                )
            ).scalar()
            if tree.size == 0 or (covered is not None and (first_only or covered >= tree.size)):
                return None
            signed = sign_checkpoint(self.signer, tree.size, tree.root(), moment)
            conn.execute(
                insert(AuditCheckpoint).values(
                    tree_size=signed.tree_size,
                    root=signed.root,
                    created_at=moment,
                    public_key=signed.public_key,
                    signature=signed.signature,
                    format=signed.format,
                )
            )
        return signed

    def checkpoint(self, *, now: datetime | None = None) -> Checkpoint:
        """A signed checkpoint covering the current tree head: signed and stored now if the log
        has grown since this key's latest one (:meth:`sign_if_grown`), else that latest one."""
        signed = self.sign_if_grown(now=now) or self.latest_own_checkpoint()
        if signed is None:
            raise AuditError("the audit log is empty: there is nothing to sign yet")
        return signed

    def latest_own_checkpoint(self) -> Checkpoint | None:
        """This key's checkpoint of the largest tree, if it signed any."""
        own = [c for c in self.checkpoints() if c.public_key == self.signer.public_key]
        # A note before a format 1 checkpoint of the same size: it is what witnesses take.
        return max(own, key=lambda c: (c.tree_size, c.format), default=None)

    def note_checkpoint(self, size: int | None = None) -> Checkpoint | None:
        """This key's signed note of ``size`` entries (default: of the largest tree), if any:
        one indexed query, for the public endpoints."""
        stmt = (
            select(AuditCheckpoint)
            .where(
                AuditCheckpoint.public_key == self.signer.public_key,
                AuditCheckpoint.format == FORMAT_NOTE,
            )
            .order_by(AuditCheckpoint.tree_size.desc(), AuditCheckpoint.id.desc())
            .limit(1)
        )
        if size is not None:
            stmt = stmt.where(AuditCheckpoint.tree_size == size)
        with self.db.read() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else self._checkpoint_of(row)

    def has_checkpoint(self, size: int) -> bool:
        """Whether this key signed a checkpoint (of either format) of exactly ``size``."""
        with self.db.read() as conn:
            found = conn.execute(
                select(AuditCheckpoint.id)
                .where(
                    AuditCheckpoint.tree_size == size,
                    AuditCheckpoint.public_key == self.signer.public_key,
                )
                .limit(1)
            ).first()
        return found is not None

    def checkpoints(self) -> list[Checkpoint]:
        with self.db.read() as conn:
            rows = conn.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id))
            return [self._checkpoint_of(r) for r in rows]

    def _checkpoint_of(self, row: Row[Any]) -> Checkpoint:
        # A Core row of audit_checkpoints' columns (the log runs on connections, not sessions).
        return Checkpoint(
            origin=self.signer.origin,
            tree_size=row.tree_size,
            root=bytes(row.root),
            time=row.created_at,
            public_key=bytes(row.public_key),
            signature=bytes(row.signature),
            format=row.format,
        )

    # -- reading -----------------------------------------------------------------------------

    def entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[StoredEntry]:
        """``before_seq`` (entries numbered below it) pages through the log newest first by
        sequence number, which unlike time is unique."""
        stmt = select(
            AuditEntry.seq,
            AuditEntry.created_at,
            AuditEntry.actor,
            AuditEntry.action,
            AuditEntry.entry,
        ).order_by(AuditEntry.seq.desc() if newest_first else AuditEntry.seq)
        if actor is not None:
            stmt = stmt.where(AuditEntry.actor == actor)
        if action is not None:
            stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
        if since is not None:
            stmt = stmt.where(AuditEntry.created_at >= since)
        if until is not None:
            stmt = stmt.where(AuditEntry.created_at < until)
        if before_seq is not None:
            stmt = stmt.where(AuditEntry.seq < before_seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.db.read() as conn:
            for r in conn.execute(stmt):
                yield StoredEntry(
                    seq=r.seq,
                    created_at=r.created_at,
                    actor=r.actor,
                    action=r.action,
                    entry=decode_entry(bytes(r.entry)) if r.entry is not None else None,
                )

    # -- pruning -----------------------------------------------------------------------------

    def prune_before(
        self, cutoff: datetime, *, actor: str, policy: str, oldest_allowed: datetime
    ) -> int:
        """Erase the content of every entry older than ``cutoff`` (a whole prefix).

        ``oldest_allowed`` is now minus the audit retention window: pruning anything newer is
        refused. Leaf hashes and MACs stay, so the tree and old checkpoints still verify.
        """
        if cutoff > oldest_allowed:
            raise AuditError(
                "refusing to prune audit entries inside the audit retention window "
                "(retention.windows.audit_entries)"
            )
        with self.db.write() as conn:
            boundary = conn.execute(
                select(func.min(AuditEntry.seq)).where(AuditEntry.created_at >= cutoff)
            ).scalar()
            stmt = update(AuditEntry).where(AuditEntry.entry.is_not(None)).values(entry=None)
            if boundary is not None:
                stmt = stmt.where(AuditEntry.seq < boundary)
            pruned = conn.execute(stmt).rowcount
            through = (boundary if boundary is not None else self._next_seq(conn)) - 1
            # The verifier accepts erased content only up to the highest ``through_seq`` that
            # an authentic (MAC'd) audit.pruned entry records.
            self.append(
                conn,
                actor=actor,
                action="audit.pruned",
                details={
                    "entries": pruned,
                    "through_seq": through,
                    "before": cutoff.isoformat(),
                    "policy": policy,
                },
            )
        if pruned:
            # The erased content may still sit in leftover copies inside pages (SQLite).
            self.db.request_scrub()
        return int(pruned)
