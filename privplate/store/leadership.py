"""Which process of a deployment leads its periodic jobs (the purge, audit checkpoints).

A lock held for as long as the leader lives: PostgreSQL, a session advisory lock on a
connection of its own (outside the pool, so nothing recycles it); SQLite, an flock on a file
beside the database. A process that dies drops the lock with its connection or file, and the
next process to try takes it. Leading grants no right to write: the purge keeps its own
runner lock (privplate.store.purging.runner_lock) as a second guard.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from privplate.store.database import Database, make_engine

log = logging.getLogger("privplate.leader")

#: Server-side keepalive on the leader's connection (PostgreSQL's defaults follow the OS: two
#: hours), so a leader whose host vanished without closing its socket loses the lock in about
#: 25 s instead of holding the deployment's jobs hostage.
_KEEPALIVE = {
    "tcp_keepalives_idle": 10,
    "tcp_keepalives_interval": 5,
    "tcp_keepalives_count": 3,
    "tcp_user_timeout": 25_000,
}


def deployment_lock_key(conn: Connection, purpose: str) -> int:
    """A PostgreSQL advisory-lock key for ``purpose`` in this connection's deployment.

    Several deployments may share one PostgreSQL, each in its own database or schema (its
    search_path), and advisory locks are server-wide: the key hashes all three.
    """
    database, schema = conn.execute(
        text(
            "SELECT current_database(), coalesce(current_schema(), current_setting('search_path'))"
        )
    ).one()
    digest = hashlib.blake2b(
        f"{purpose}\0{database}\0{schema}".encode(), digest_size=8, person=b"privplate-lock"
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


class Leadership:
    """This process's claim to lead the deployment's jobs; :meth:`hold` before each job."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._mutex = threading.Lock()
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._fd: int | None = None
        self._leading = False

    @property
    def is_leader(self) -> bool:
        """Whether this process led at the last :meth:`hold` (no database round trip)."""
        return self._leading

    def hold(self) -> bool:
        """True if this process leads now: a lock it holds is checked still to be held (its
        connection alive), else it tries to take the lock. Changes are logged."""
        with self._mutex:
            if self._leading and not self._still_held():
                self._leading = False
            if not self._leading and self._take():
                self._leading = True
                log.info(
                    "this process (pid %d) now leads the purge and audit checkpoints", os.getpid()
                )
            return self._leading

    def check(self) -> bool:
        """True if this process still leads (its lock verified held); never takes the lead:
        what a leader's job asks just before it runs."""
        with self._mutex:
            if self._leading and not self._still_held():
                self._leading = False
            return self._leading

    def release(self) -> None:
        """Give the lead up (at shutdown), so another process takes it at its next try."""
        with self._mutex:
            was = self._leading
            self._drop()
            if was:
                log.info("this process (pid %d) gave up the lead", os.getpid())

    # -- PostgreSQL: an advisory lock on a connection of its own --------------------------------

    def _take(self) -> bool:
        if not self._db.is_postgres:
            return self._take_file()
        try:
            if self._conn is None:
                if self._engine is None:
                    self._engine = make_engine(self._db.url, poolclass=NullPool)
                self._conn = self._engine.connect()
                for name, value in _KEEPALIVE.items():
                    self._conn.execute(text(f"SET {name} = {int(value)}"))
            key = deployment_lock_key(self._conn, "leader")
            got = bool(
                self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            )
            self._conn.commit()  # a session lock outlives the transaction; no idle one lingers
            return got
        except SQLAlchemyError as exc:
            log.warning("could not try for the lead: %s", type(exc).__name__)
            self._drop_connection()
            return False

    def _still_held(self) -> bool:
        if self._fd is not None:
            return True  # an flock lasts as long as this process keeps the file open
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except SQLAlchemyError as exc:
            # The connection is gone (PostgreSQL restarted, the backend was terminated): so is
            # the lock, and another process may lead already.
            log.warning("lost the lead: its database connection failed (%s)", type(exc).__name__)
            self._drop_connection()
            return False
        return True

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    # -- SQLite: an flock on a file beside the database ------------------------------------------

    def _take_file(self) -> bool:
        path = Path(str(make_url(self._db.url).database) + ".leader-lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _drop(self) -> None:
        self._leading = False
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the flock
            self._fd = None
        # Closing the session ends its advisory lock, whether or not an unlock would reach it.
        self._drop_connection()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
