"""PostgreSQL LISTEN/NOTIFY for alerts: every server process's streams wake when any process of
the deployment records one, instead of polling.

The ingest transaction that records alerts also sends ``NOTIFY`` (:func:`announce_alerts`), so
PostgreSQL delivers it exactly at commit and never for a batch that rolled back. The payload is
the batch's highest alert id and nothing else: never a plate, a token, a camera or a hotlist.
The channel is the deployment's (its database and schema, as
privplate.store.leadership.deployment_lock_key identifies a deployment), so two deployments on
one PostgreSQL do not wake each other.

Each server process has one :class:`AlertListener`: a thread with a connection of its own (not
from the pool, autocommit) that LISTENs and wakes the process's AlertBroker on each
notification. It reconnects with backoff after losing the connection (PostgreSQL restarted, the
backend terminated) and wakes the broker once it is back, since alerts committed meanwhile sent
notifications nobody heard; streams poll while it is away (AlertBroker.pushed is False). On
SQLite there is nothing to listen to and streams keep polling.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from privplate.alerts.broker import AlertBroker
from privplate.store.database import Database

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("privplate.alerts")

# One rule for the channel's name, evaluated by PostgreSQL for the connection at hand (the
# sender's and the listener's see the same database and search_path): no round trip of its own
# in the ingest transaction. An md5 keeps any database or schema name a short, plain identifier.
_CHANNEL = (
    "'privplate_alerts_' || md5(quote_ident(current_database()) || '.' || "
    "quote_ident(coalesce(current_schema(), current_setting('search_path'))))"
)
#: How the listener's connection shows in pg_stat_activity (``privplate-alerts <pid>``).
APPLICATION_NAME = "privplate-alerts"
#: Between reconnection attempts: from the first to the most.
RECONNECT_SECONDS = (0.2, 5.0)
#: A quiet connection is checked this often (a round trip), besides TCP keepalives, so a
#: connection that died without a word is found and replaced.
HEARTBEAT_SECONDS = 15.0
# Client-side keepalives: a listener whose server vanished (no FIN) gives up in about 25 s.
_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 25_000,
}


def alert_channel(conn: Connection) -> str:
    """The NOTIFY channel of ``conn``'s deployment."""
    return str(conn.execute(text(f"SELECT {_CHANNEL}")).scalar_one())


def announce_alerts(conn: Connection, last_id: int) -> None:
    """Inside the transaction that recorded alerts up to ``last_id``: PostgreSQL tells every
    listener at commit (the id only). Nothing on SQLite, nor for a batch without alerts."""
    if last_id <= 0 or conn.dialect.name != "postgresql":
        return
    conn.execute(text(f"SELECT pg_notify({_CHANNEL}, :id)"), {"id": str(last_id)})


class AlertListener:
    """This process's LISTEN connection, waking ``broker`` (PostgreSQL; a no-op on SQLite)."""

    def __init__(self, db: Database, broker: AlertBroker) -> None:
        self._db = db
        self._broker = broker
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Written to by stop(), so a listener waiting on its socket ends at once.
        self._stop_r, self._stop_w = -1, -1

    def start(self) -> None:
        if not self._db.is_postgres or self._thread is not None:
            return
        self._stop.clear()
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="alert-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        os.write(self._stop_w, b"x")
        thread.join(15)
        self._broker.set_pushed(False)
        if not thread.is_alive():  # else it still selects on the pipe: leave it open
            os.close(self._stop_r)
            os.close(self._stop_w)

    # -- the thread ------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg  # noqa: PLC0415 - the postgres extra; a core install never listens

        args, params = self._db.engine.dialect.create_connect_args(self._db.engine.url)
        params.pop("context", None)  # SQLAlchemy's adapters; this connection needs none
        conn = psycopg.connect(
            *args,
            **{**params, **_KEEPALIVES},
            autocommit=True,
            connect_timeout=5,
            application_name=f"{APPLICATION_NAME} {os.getpid()}",
        )
        try:
            row = conn.execute(f"SELECT {_CHANNEL}").fetchone()
            channel = str(row[0]) if row else ""
            conn.execute(f'LISTEN "{channel}"')  # an md5's hex digits: nothing to escape
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self) -> None:
        import psycopg  # noqa: PLC0415 - the postgres extra; a core install never listens

        delay = RECONNECT_SECONDS[0]
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except (psycopg.Error, OSError) as exc:
                log.warning("alert listener cannot connect (%s); streams poll", type(exc).__name__)
                if self._stopped_within(delay):
                    return
                delay = min(delay * 2, RECONNECT_SECONDS[1])
                continue
            delay = RECONNECT_SECONDS[0]
            # Pushed from here on; the wake lets every stream catch up on what committed while
            # no one listened (each looks by its cursor).
            self._broker.set_pushed(True)
            try:
                self._listen(conn)
            except (psycopg.Error, OSError) as exc:
                log.warning(
                    "alert listener lost its connection (%s); reconnecting", type(exc).__name__
                )
            finally:
                # Streams poll until the listener is back (set_pushed wakes them to start).
                self._broker.set_pushed(False)
                conn.close()

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            # Notifications libpq took in with the last round trip, or waiting on the socket.
            if list(conn.notifies(timeout=0)):
                self._broker.notify()
            ready, _, _ = select.select([conn.fileno(), self._stop_r], [], [], HEARTBEAT_SECONDS)
            if self._stop_r in ready:
                return
            if not ready:
                conn.execute("SELECT 1")  # raises if the connection died quietly

    def _stopped_within(self, seconds: float) -> bool:
        ready, _, _ = select.select([self._stop_r], [], [], seconds)
        return bool(ready) or self._stop.is_set()
