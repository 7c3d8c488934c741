"""CSV imports between their preview and their confirmation, held encrypted in the database.

Why here and not in the page: the preview's answer would otherwise have to carry the file
(every plate in it) back to the browser, in a hidden field, to be posted again on confirm. Held
here, the plates never return to the browser at all: the preview page carries only a random key,
and the confirmation posts that key. Why the database and not a process's memory: with
``privplate serve --workers N`` (or several hosts) the confirmation may reach another worker
than the preview did; every worker shares the database.

No plate is written to disk in the clear: a row (privplate.store.pending_import_models) holds the
file only as XChaCha20-Poly1305 ciphertext under ``subkey("pending-import")`` of the server
secret (keys/server.key, never in the database), with the row's id, owner and hotlist as
associated data, so a ciphertext copied into another row does not open. The file is padded to
a multiple of ``PAD_BYTES`` first, so the ciphertext's size tells only roughly how long the
file is. The row is keyed by a hash of the random key (the key is not stored) and bound to the
uploading session by a hash of its token, as before: only that session can take it.

A pending import is used once (taken by a DELETE ... RETURNING, so two confirmations racing
on two workers import it once), lives ``TTL_SECONDS``, and each session has at most one (a new
upload replaces it); at most ``MAX_PENDING`` exist at a time (the oldest goes first). Expired
rows are deleted on every put and take, and by the retention purge
(privplate.retention.records), which on SQLite also zeroes the freed space. On PostgreSQL a
deleted row stays in a dead tuple until VACUUM reclaims it: that copy is ciphertext only.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, or_, select

from privplate.sealing.bound import open_bound, seal_bound
from privplate.server_secret import ServerSecret
from privplate.store.database import Database
from privplate.store.pending_import_models import PendingImport

TTL_SECONDS = 15 * 60
MAX_PENDING = 64
#: The padded file's length is a multiple of this (after a 4-byte length prefix).
PAD_BYTES = 4096
DOMAIN = b"privplate/v1/pending-import\x00"
#: Serializes puts across workers: replacing a session's import and the bound on the count.
LOCK = "console.pending_imports"


def _associated(row_id: bytes, owner: bytes, hotlist: str) -> bytes:
    return DOMAIN + row_id + owner + hotlist.encode()


def _seal(key: bytes, row_id: bytes, owner: bytes, hotlist: str, text: str) -> bytes:
    body = text.encode("utf-8")
    padded = struct.pack(">I", len(body)) + body
    padded += b"\0" * (-len(padded) % PAD_BYTES)
    return seal_bound(key, _associated(row_id, owner, hotlist), padded)


def _open(key: bytes, row_id: bytes, owner: bytes, hotlist: str, sealed: bytes) -> str | None:
    padded = open_bound(key, _associated(row_id, owner, hotlist), sealed)
    if padded is None:
        return None  # altered, moved, or sealed under another server secret
    (length,) = struct.unpack(">I", padded[:4])
    return padded[4 : 4 + length].decode("utf-8")


class PendingImports:
    def __init__(self, db: Database, secret: ServerSecret) -> None:
        self.db = db
        self._key = secret.subkey("pending-import")

    @staticmethod
    def owner_of(session_token: str) -> bytes:
        return hashlib.sha256(session_token.encode()).digest()

    @staticmethod
    def _row_id(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    def put(
        self, *, session_token: str, hotlist: str, text: str, now: datetime | None = None
    ) -> str:
        """Keep ``text`` for this session's confirmation; the key the preview page carries."""
        now = now or datetime.now(UTC)
        owner = self.owner_of(session_token)
        key = secrets.token_urlsafe(18)
        row_id = self._row_id(key)
        with self.db.write() as conn:
            self.db.lock_subject(conn, LOCK)
            conn.execute(
                delete(PendingImport).where(
                    or_(PendingImport.expires_at <= now, PendingImport.owner == owner)
                )
            )
            count = conn.execute(select(func.count()).select_from(PendingImport)).scalar_one()
            if count >= MAX_PENDING:  # the oldest go first
                oldest = conn.execute(
                    select(PendingImport.id)
                    .order_by(PendingImport.created_at, PendingImport.id)
                    .limit(count - MAX_PENDING + 1)
                ).scalars()
                conn.execute(delete(PendingImport).where(PendingImport.id.in_(list(oldest))))
            conn.execute(
                insert(PendingImport).values(
                    id=row_id,
                    owner=owner,
                    hotlist=hotlist,
                    sealed=_seal(self._key, row_id, owner, hotlist, text),
                    created_at=now,
                    expires_at=now + timedelta(seconds=TTL_SECONDS),
                )
            )
        return key

    def take(
        self, *, session_token: str, hotlist: str, key: str, now: datetime | None = None
    ) -> str | None:
        """The CSV text of this session's pending import of ``hotlist``, removed; None when
        there is none (expired, already imported, replaced, or someone else's)."""
        now = now or datetime.now(UTC)
        owner = self.owner_of(session_token)
        row_id = self._row_id(key)
        with self.db.write() as conn:
            conn.execute(delete(PendingImport).where(PendingImport.expires_at <= now))
            # Someone else's key (another session, another list) is left alone, not used up.
            sealed = conn.execute(
                delete(PendingImport)
                .where(
                    PendingImport.id == row_id,
                    PendingImport.owner == owner,
                    PendingImport.hotlist == hotlist,
                )
                .returning(PendingImport.sealed)
            ).scalar()
        if sealed is None:
            return None
        return _open(self._key, row_id, owner, hotlist, sealed)
