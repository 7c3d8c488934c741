"""SQL storage for the epoch keyring (implements privplate.tokens.keyring.EpochStorage)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from privplate.errors import AlreadyExists
from privplate.store.database import Database
from privplate.store.leadership import deployment_lock_key
from privplate.store.models import Epoch, table_of
from privplate.tokens.keyring import ConcurrentKeyringChange, EpochRecord, StaleKek

# Core table, not the mapped attributes: every lookup and every edge tokenization asks for
# epochs, and an ORM-enabled select costs more to build and run (benchmarks/core.py).
_t = table_of(Epoch)
_COLUMNS = (
    _t.c.id,
    _t.c.starts_at,
    _t.c.ends_at,
    _t.c.kek_generation,
    _t.c.wrapped_key,
    _t.c.destroyed_at,
)


def _records(conn: Connection, *where: object) -> list[EpochRecord]:
    stmt = select(*_COLUMNS).where(*where).order_by(_t.c.starts_at)  # type: ignore[arg-type]
    return [
        EpochRecord(
            epoch_id=r.id,
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            kek_generation=r.kek_generation,
            wrapped_key=r.wrapped_key,
            destroyed_at=r.destroyed_at,
        )
        for r in conn.execute(stmt)
    ]


#: Called inside the destruction transaction with (connection, destroyed epoch ids, new KEK
#: generation); raising aborts the destruction. The deployment uses it to write the audit entry.
DestroyHook = Callable[[Connection, Sequence[int], int], None]


class SqlEpochStorage:
    def __init__(self, db: Database, *, on_destroy: DestroyHook | None = None) -> None:
        self._db = db
        self._on_destroy = on_destroy

    def epoch_at(self, moment: datetime) -> EpochRecord | None:
        with self._db.read() as conn:
            found = _records(conn, _t.c.starts_at <= moment, _t.c.ends_at > moment)
        return found[0] if found else None

    def latest_epoch(self) -> EpochRecord | None:
        with self._db.read() as conn:
            last = conn.execute(select(func.max(_t.c.starts_at))).scalar()
            if last is None:
                return None
            return _records(conn, _t.c.starts_at == last)[0]

    def epochs_overlapping(self, start: datetime, end: datetime) -> list[EpochRecord]:
        with self._db.read() as conn:
            return _records(conn, _t.c.starts_at < end, _t.c.ends_at > start)

    def live_epochs(self) -> list[EpochRecord]:
        with self._db.read() as conn:
            return _records(conn, _t.c.wrapped_key.is_not(None), _t.c.destroyed_at.is_(None))

    def kek_generations_in_use(self) -> set[int]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(_t.c.kek_generation).where(_t.c.wrapped_key.is_not(None)).distinct()
            )
            return {r[0] for r in rows if r[0] is not None}

    @contextmanager
    def rotation_guard(self) -> Iterator[None]:
        """PostgreSQL: the deployment's rotation lock, a session advisory lock held on one
        connection for a whole KEK rotation or recovery. A process starting on another host
        (whose flock on the key directory may not reach this one's) then waits instead of
        discarding a staged KEK that a rotation is about to commit. SQLite: one host, whose
        flock (privplate.tokens.kek.rotation_lock) is enough."""
        if not self._db.is_postgres:
            yield
            return
        with self._db.engine.connect() as conn:
            key = deployment_lock_key(conn, "kek-rotation")
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                except SQLAlchemyError:
                    conn.invalidate()  # never back to the pool with the lock still held

    def add_epoch(self, record: EpochRecord) -> None:
        try:
            with self._db.write() as conn:
                self._db.lock_keyring(conn)
                newest = conn.execute(
                    select(func.max(_t.c.kek_generation)).where(_t.c.wrapped_key.is_not(None))
                ).scalar()
                if (
                    newest is not None
                    and record.kek_generation is not None
                    and (newest > record.kek_generation)
                ):
                    raise StaleKek("a newer key-encryption key is in use")
                overlapping = conn.execute(
                    select(_t.c.id).where(
                        _t.c.starts_at < record.ends_at, _t.c.ends_at > record.starts_at
                    )
                ).first()
                if overlapping is not None:
                    raise AlreadyExists("an epoch already covers this time")
                conn.execute(
                    insert(Epoch).values(
                        id=record.epoch_id,
                        starts_at=record.starts_at,
                        ends_at=record.ends_at,
                        kek_generation=record.kek_generation,
                        wrapped_key=record.wrapped_key,
                        destroyed_at=None,
                    )
                )
        except IntegrityError:
            raise AlreadyExists("an epoch with this id already exists") from None

    def rewrap(
        self,
        rewrapped: dict[int, bytes],
        generation: int,
        destroy: Sequence[int],
        destroyed_at: datetime,
    ) -> None:
        with self._db.write() as conn:
            self._db.lock_keyring(conn)
            live = {
                r[0]
                for r in conn.execute(
                    select(_t.c.id).where(
                        _t.c.wrapped_key.is_not(None), _t.c.destroyed_at.is_(None)
                    )
                )
            }
            if live != set(rewrapped) | set(destroy):
                raise ConcurrentKeyringChange("live epochs changed during rotation")
            for epoch_id, wrapped in rewrapped.items():
                conn.execute(
                    update(Epoch)
                    .where(_t.c.id == epoch_id)
                    .values(wrapped_key=wrapped, kek_generation=generation)
                )
            if destroy:
                conn.execute(
                    update(Epoch)
                    .where(_t.c.id.in_(list(destroy)))
                    .values(wrapped_key=None, kek_generation=None, destroyed_at=destroyed_at)
                )
                if self._on_destroy is not None:
                    self._on_destroy(conn, destroy, generation)
