"""Hotlist entries as tokens: one per entry and live epoch, matched against reads at ingest.

An epoch is "synced" once every entry live at that moment has its token in it (a marker row
in ``hotlist_token_epochs``); entries added later are tokenized under every live epoch as they
are created, under the same lock, so a synced epoch never misses an entry.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from privplate.errors import EpochKeyDestroyed
from privplate.hotlists.box import PlateBox
from privplate.store.database import Database
from privplate.store.ingest import ReadIn
from privplate.store.server_models import Hotlist, HotlistEntry, HotlistToken, HotlistTokenEpoch
from privplate.tokens.keyring import EpochKey, Keyring
from privplate.tokens.plate_token import plate_token

_CHUNK = 900
_LOCK_ID = 0x7072_6976_686C  # "privhl": serializes hotlist tokenization on PostgreSQL


class StaleKeys(Exception):
    """A new epoch appeared while entries were being added: retry with fresh keys."""


@dataclass(frozen=True)
class Hit:
    """A read token that matched a live hotlist entry."""

    read_id: uuid.UUID
    entry_id: uuid.UUID
    hotlist_id: uuid.UUID
    hotlist: str
    reason: str
    case_number: str
    via_alternate: bool


class HotlistTokens:
    def __init__(self, *, db: Database, keyring: Keyring, box: PlateBox) -> None:
        self.db = db
        self.keyring = keyring
        self.box = box
        self._synced: set[int] = set()
        self._mutex = threading.Lock()

    def lock(self, conn: Connection) -> None:
        """Serialize entry creation and epoch syncing (SQLite's write lock already does)."""
        if self.db.is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})

    def _insert(self, conn: Connection, rows: list[dict[str, object]]) -> None:
        if not rows:
            return
        dialect_insert = postgresql.insert if self.db.is_postgres else sqlite.insert
        stmt = dialect_insert(HotlistToken).on_conflict_do_nothing()
        for start in range(0, len(rows), 5_000):
            conn.execute(stmt, rows[start : start + 5_000])

    def live_keys(self) -> list[EpochKey]:
        """Fetched before the write transaction (a second connection inside it would wait on
        the writer), then checked against the synced epochs by :meth:`tokenize_new`."""
        return self.keyring.live_keys()

    def tokenize_new(
        self, conn: Connection, plates: Mapping[uuid.UUID, str], keys: Sequence[EpochKey]
    ) -> None:
        """Tokens for new entries under every live epoch key (caller holds :meth:`lock`).

        Raises :class:`StaleKeys` if an epoch was synced since ``keys`` were fetched; the
        caller rolls back and tries again with fresh keys.
        """
        synced = set(conn.execute(select(HotlistTokenEpoch.epoch_id)).scalars())
        if synced - {k.epoch_id for k in keys}:
            raise StaleKeys
        rows: list[dict[str, object]] = [
            {"epoch_id": key.epoch_id, "token": plate_token(key.key, plate), "entry_id": entry}
            for key in keys
            for entry, plate in plates.items()
        ]
        self._insert(conn, rows)

    def ensure_epochs(self, epoch_ids: Iterable[int]) -> None:
        """Make sure every live entry has a token in each of these epochs."""
        missing = set(epoch_ids) - self._synced
        if not missing:
            return
        with self._mutex:
            for epoch_id in sorted(missing - self._synced):
                self._sync(epoch_id)
                self._synced.add(epoch_id)

    def _sync(self, epoch_id: int) -> None:
        with self.db.read() as conn:
            done = conn.execute(
                select(HotlistTokenEpoch.epoch_id).where(HotlistTokenEpoch.epoch_id == epoch_id)
            )
            if done.first() is not None:
                return
        try:
            key = self.keyring.key_for(epoch_id)
        except EpochKeyDestroyed:
            return  # nothing can match in a destroyed epoch
        now = datetime.now(UTC)
        with self.db.write() as conn:
            self.lock(conn)
            if conn.execute(
                select(HotlistTokenEpoch.epoch_id).where(HotlistTokenEpoch.epoch_id == epoch_id)
            ).first():
                return
            live = conn.execute(
                select(HotlistEntry.id, HotlistEntry.plate_box).where(
                    HotlistEntry.removed_at.is_(None), HotlistEntry.expires_at > now
                )
            ).all()
            self._insert(
                conn,
                [
                    {
                        "epoch_id": epoch_id,
                        "token": plate_token(key.key, self.box.open(r.plate_box)),
                        "entry_id": r.id,
                    }
                    for r in live
                ],
            )
            conn.execute(insert(HotlistTokenEpoch).values(epoch_id=epoch_id, synced_at=now))

    def forget(self, epoch_ids: Sequence[int]) -> None:
        self._synced.difference_update(epoch_ids)

    def refresh(self) -> None:
        """Catch up with other processes (every purge interval, on every process): forget
        the epochs a purge destroyed, and have the current epoch's tokens made, so a new
        epoch is synced before its first ingest rather than inside it."""
        live = self.keyring.live_epoch_ids()
        with self._mutex:
            self._synced.intersection_update(live)
        self.ensure_epochs([self.keyring.current_key().epoch_id])

    def match(self, reads: Sequence[ReadIn], now: datetime | None = None) -> list[Hit]:
        """Which reads match a live entry, by any of their tokens (best or alternate)."""
        if not reads:
            return []
        now = now or datetime.now(UTC)
        self.ensure_epochs({r.epoch_id for r in reads})
        wanted: dict[tuple[int, bytes], list[tuple[uuid.UUID, bool]]] = defaultdict(list)
        for read in reads:
            for tok in read.tokens:
                wanted[(read.epoch_id, tok.token)].append((read.read_id, tok.is_alternate))
        by_epoch: dict[int, list[bytes]] = defaultdict(list)
        for epoch_id, token in wanted:
            by_epoch[epoch_id].append(token)
        hits: dict[tuple[uuid.UUID, uuid.UUID], Hit] = {}
        with self.db.read() as conn:
            for epoch_id, tokens in by_epoch.items():
                for start in range(0, len(tokens), _CHUNK):
                    stmt = (
                        select(
                            HotlistToken.token,
                            HotlistEntry.id,
                            HotlistEntry.hotlist_id,
                            Hotlist.name,
                            HotlistEntry.reason,
                            HotlistEntry.case_number,
                        )
                        .join(HotlistEntry, HotlistEntry.id == HotlistToken.entry_id)
                        .join(Hotlist, Hotlist.id == HotlistEntry.hotlist_id)
                        .where(
                            HotlistToken.epoch_id == epoch_id,
                            HotlistToken.token.in_(tokens[start : start + _CHUNK]),
                            HotlistEntry.removed_at.is_(None),
                            HotlistEntry.expires_at > now,
                        )
                    )
                    for row in conn.execute(stmt):
                        for read_id, alternate in wanted[(epoch_id, bytes(row.token))]:
                            key = (read_id, row.id)
                            prior = hits.get(key)
                            # A best-token match outranks an alternate one for the same entry.
                            if prior is None or (prior.via_alternate and not alternate):
                                hits[key] = Hit(
                                    read_id,
                                    row.id,
                                    row.hotlist_id,
                                    row.name,
                                    row.reason,
                                    row.case_number,
                                    alternate,
                                )
        return list(hits.values())

    def epoch_tokens(self, epoch_id: int) -> list[tuple[bytes, str]]:
        """(token, hotlist name) of every live entry in one epoch: what an edge needs to raise
        alerts while the server is unreachable."""
        self.ensure_epochs([epoch_id])
        now = datetime.now(UTC)
        with self.db.read() as conn:
            rows = conn.execute(
                select(HotlistToken.token, Hotlist.name)
                .join(HotlistEntry, HotlistEntry.id == HotlistToken.entry_id)
                .join(Hotlist, Hotlist.id == HotlistEntry.hotlist_id)
                .where(
                    HotlistToken.epoch_id == epoch_id,
                    HotlistEntry.removed_at.is_(None),
                    HotlistEntry.expires_at > now,
                )
                .order_by(HotlistToken.token)
            ).all()
        return [(bytes(r.token), r.name) for r in rows]
