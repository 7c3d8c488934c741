"""Server-Sent Events of new alerts: the loop behind the API's ``/alerts/stream`` and the
console's live alerts page (one loop, two surfaces).

The loop looks for alerts after its cursor when the broker wakes it. On PostgreSQL every
process of the deployment wakes it: the transaction that records alerts sends a NOTIFY whose
payload is the highest new alert id only (never plate data), and this process's listener
(privplate.alerts.notify) wakes the broker, so the loop does not poll. On SQLite, or while the
listener is reconnecting, alerts recorded by other processes are found by polling every
POLL_SECONDS. The caller's right to the stream is checked again before every look for alerts,
after every look that found some and before they are sent, and at least every RECHECK_SECONDS
(``still_allowed``), so a stream ends with the session or key that opened it (signed out,
revoked, expired, idle or the user disabled) and never carries an alert recorded after it.

Alert ids are taken from a sequence when a batch inserts them, not when it commits, so with
several processes ingesting at once a lower id can commit after a higher one was sent. A plain
"ids above the last sent" cursor would skip it for ever. The stream's :class:`Cursor` therefore
looks above a floor that trails the highest id sent by GAP_SECONDS, leaving out the ids it has
already sent: an alert whose transaction committed up to GAP_SECONDS after a higher one is
still sent (out of id order). A client resuming with Last-Event-ID starts from that id, so an
alert committing late around a reconnect can still be missed; the alerts list catches it.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from privplate.alerts.broker import AlertBroker
from privplate.alerts.records import AlertInfo, alerts_after
from privplate.store.database import Database

POLL_SECONDS = 1.0
#: With alerts pushed, how often a quiet stream checks that its caller may still watch.
RECHECK_SECONDS = 5.0
KEEPALIVE_SECONDS = 15.0
#: Alerts per look; a full page is followed by another look at once.
PAGE = 200
#: How long after a higher id an alert's commit is still caught (ingest transactions take
#: well under a second; a batch is refused long before this).
GAP_SECONDS = 30.0


class Cursor:
    """Where a stream stands: the ids sent above a floor that trails the highest by
    GAP_SECONDS, so a lower id committing after a higher one is not skipped."""

    def __init__(self, start: int) -> None:
        self.floor = start
        self.highest = start
        self.sent: set[int] = set()
        self._marks: deque[tuple[float, int]] = deque()

    def advance(self, now: float) -> None:
        """Before a look: ids older than GAP_SECONDS below the highest are given up on."""
        self._marks.append((now, self.highest))
        while self._marks and now - self._marks[0][0] > GAP_SECONDS:
            _, mark = self._marks.popleft()
            if mark > self.floor:
                self.floor = mark
                self.sent = {i for i in self.sent if i > mark}

    def mark_sent(self, alert_id: int) -> None:
        self.sent.add(alert_id)
        self.highest = max(self.highest, alert_id)


async def alert_events(
    *,
    db: Database,
    broker: AlertBroker,
    cursor: int,
    disconnected: Callable[[], Awaitable[bool]],
    still_allowed: Callable[[], bool],
    payload: Callable[[AlertInfo], dict[str, Any]],
) -> AsyncIterator[bytes]:
    """``event: alert`` for each alert after ``cursor``, with its id (a client resumes with
    Last-Event-ID), a keep-alive comment when quiet; ends when the client goes or loses its
    right. ``still_allowed`` runs in a worker thread (it reads the database)."""
    wake = broker.subscribe()
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    seen = Cursor(cursor)
    look = True  # the first pass catches up from the cursor
    try:
        yield b": connected\n\n"
        while not await disconnected():
            if not await asyncio.to_thread(still_allowed):
                return
            full = False
            if look:
                # Cleared before the look: a wake during it means another look.
                wake.clear()
                seen.advance(loop.time())
                fresh = await asyncio.to_thread(
                    alerts_after, db=db, after_id=seen.floor, limit=PAGE, skip=frozenset(seen.sent)
                )
                # Checked again after the look: a right lost between the check above and the
                # look would otherwise let an alert recorded after that through.
                if fresh and not await asyncio.to_thread(still_allowed):
                    return
                for alert in fresh:
                    seen.mark_sent(alert.id)
                    data = json.dumps(payload(alert))
                    yield f"id: {alert.id}\nevent: alert\ndata: {data}\n\n".encode()
                    last_sent = loop.time()
                full = len(fresh) >= PAGE
            if loop.time() - last_sent > KEEPALIVE_SECONDS:
                yield b": keep-alive\n\n"
                last_sent = loop.time()
            if full:
                continue
            pushed = broker.pushed
            try:
                await asyncio.wait_for(wake.wait(), RECHECK_SECONDS if pushed else POLL_SECONDS)
                look = True
            except TimeoutError:
                # Pushed: nothing was recorded, only the caller's right is checked again.
                # (Losing the listener wakes the loop, which then polls.)
                look = not broker.pushed
    except RuntimeError as exc:
        # The server is stopping: its event loop shut the thread pool down while this stream
        # was open (uvicorn does not wait for endless responses). The client reconnects to a
        # running worker with Last-Event-ID; anything else is a real error.
        if not _shutting_down(exc):
            raise
    finally:
        broker.unsubscribe(wake)


def _shutting_down(exc: RuntimeError) -> bool:
    # asyncio and concurrent.futures say so only in words: "Executor shutdown has been called",
    # "cannot schedule new futures after (interpreter) shutdown".
    return "shutdown" in str(exc)
