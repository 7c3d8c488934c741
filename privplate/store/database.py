"""Engines, transactions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import sqlean
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from privplate.errors import StoreError
from privplate.store.partitions import ensure_partitions

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# A transaction started with this execution option takes SQLite's write lock up front, so two
# writers queue on busy_timeout instead of failing to upgrade a read lock mid-transaction.
_WRITE = "privplate_write"


def _sqlite_pragmas(dbapi_conn: sqlean.Connection, _record: object) -> None:
    # We issue BEGIN ourselves (see _sqlite_begin); pysqlite's implicit BEGIN would defeat it.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # auto_vacuum only takes effect on an empty database, i.e. before the first migration.
    cur.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Deleted rows are overwritten with zeros, so purged tokens do not linger in free pages.
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # The token index is random by design (HMAC output); a larger page cache keeps its hot
    # pages in memory so ingest does not degrade into random I/O as the store grows.
    cur.execute("PRAGMA cache_size=-262144")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # sqlean.py is the standard sqlite3 module built with a current SQLite and the
        # sqlite_dbpage table, which the purge needs to zero free space inside pages
        # (privplate.store.scrub). One SQLite library per process: two copies in a process
        # would each track POSIX locks on the same file and can corrupt it.
        engine = create_engine(url, module=sqlean, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # No server-side prepared statements: after a few runs PostgreSQL switches them to a
        # generic plan that searches long IN-lists linearly (seconds per ingest batch).
        return create_engine(
            url, pool_pre_ping=True, connect_args={"prepare_threshold": None}, **kwargs
        )
    raise StoreError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite:///PATH or "
        "postgresql+psycopg://USER@HOST/DB in database_url"
    )


def scrub_marker_path(url: str) -> Path:
    """Where a SQLite database's scrub marker lives (beside the file)."""
    return Path(str(make_url(url).database) + ".scrub-pending")


class Database:
    """One deployment's database: an engine plus transaction helpers."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.dialect = self.engine.dialect.name
        self._write_engine = self.engine.execution_options(**{_WRITE: True})
        self._partition_days: set[date] = set()

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def scrub_marker(self) -> Path:
        """SQLite: while this file exists, the next purge zeroes free space in every table."""
        return scrub_marker_path(self.url)

    def request_scrub(self) -> str | None:
        """After erasing data outside the purge (e.g. audit pruning), on SQLite: make the next
        purge zero the leftover copies inside pages (privplate.store.scrub). Returns this
        request's token, for :meth:`clear_scrub`."""
        if not self.is_sqlite:
            return None
        token = secrets.token_hex(16)
        marker = self.scrub_marker
        fresh = marker.with_name(f"{marker.name}.{token}")
        fresh.write_text(token, encoding="ascii")
        os.chmod(fresh, 0o600)
        os.replace(fresh, marker)  # a request replaces the marker whole, never half-written
        return token

    def clear_scrub(self, token: str | None) -> None:
        """The zeroing asked for up to request ``token`` is done: remove the marker, unless
        another process asked again meanwhile (its request stands for the next purge)."""
        if token is None:
            return
        try:
            current = self.scrub_marker.read_text(encoding="ascii")
        except FileNotFoundError:
            return
        if current == token:
            self.scrub_marker.unlink(missing_ok=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: commits on success, rolls back on any exception."""
        try:
            with self._write_engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database write failed: {_reason(exc)}") from None

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """One connection for a run of write transactions, each ``with conn.begin():``."""
        try:
            with self._write_engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database write failed: {_reason(exc)}") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (rolled back at the end)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreError(f"database read failed: {_reason(exc)}") from None

    def lock_keyring(self, conn: Connection) -> None:
        """Serialize keyring changes across processes for the rest of this transaction."""
        if self.is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(7451001)"))
        # SQLite write transactions already hold the database write lock (BEGIN IMMEDIATE).

    def lock_subject(self, conn: Connection, name: str) -> None:
        """Serialize, across processes, the write transactions that check and then change
        what ``name`` stands for (e.g. a quota's count and the row that uses it up), until
        this transaction ends.

        PostgreSQL: a transaction-level advisory lock keyed by a stable hash of ``name``.
        SQLite: a write transaction took the database write lock at BEGIN IMMEDIATE already;
        a read transaction cannot hold one, so it is refused here rather than racing.
        """
        if self.is_postgres:
            key = int.from_bytes(
                hashlib.blake2b(name.encode(), digest_size=8, person=b"privplate-lock").digest(),
                "big",
                signed=True,
            )
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        elif not conn.get_execution_options().get(_WRITE):
            raise StoreError(f"lock {name!r} taken outside a write transaction (Database.write)")

    def ensure_partitions(self, days: set[date]) -> None:
        """PostgreSQL: make sure the daily partitions for ``days`` exist (cached per process)."""
        missing = days - self._partition_days
        if not missing or not self.is_postgres:
            return
        with self.write() as conn:
            ensure_partitions(conn, missing)
        self._partition_days |= missing

    def forget_partitions(self) -> None:
        """Drop the partition cache (after a purge dropped partitions, or a failed insert)."""
        self._partition_days.clear()

    # -- migrations ------------------------------------------------------------------------

    def _alembic_config(self, conn: Connection) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = conn
        return cfg

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        try:
            with self.engine.connect().execution_options(**{_WRITE: True}) as conn:
                command.upgrade(self._alembic_config(conn), "head")
                conn.commit()
        except SQLAlchemyError as exc:
            raise StoreError(f"database migration failed: {_reason(exc)}") from None

    def migrate_and_dispose(self) -> None:
        try:
            self.migrate()
        finally:
            self.dispose()

    def schema_revision(self) -> tuple[str | None, str | None]:
        """(current revision, newest revision): equal when the schema is up to date."""
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
        return current, head

    def dispose(self) -> None:
        self.engine.dispose()


def _reason(exc: SQLAlchemyError) -> str:
    # The driver's first line names the problem; parameters (which could hold tokens) are
    # never included.
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]
