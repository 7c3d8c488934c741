"""Server-Sent Events of new alerts: the loop behind the API's ``/alerts/stream`` and the
console's live alerts page (one loop, two surfaces).

The broker wakes the loop when this process records an alert; alerts recorded by other server
processes are found by polling every POLL_SECONDS. The caller's right to the stream is checked
again before every look for alerts (``still_allowed``), so a stream ends with the session or
key that opened it: signed out, revoked, expired, idle or the user disabled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from privplate.alerts.broker import AlertBroker
from privplate.alerts.records import AlertInfo, alerts_after
from privplate.store.database import Database

POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0


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
    try:
        yield b": connected\n\n"
        while not await disconnected():
            wake.clear()
            if not await asyncio.to_thread(still_allowed):
                return
            fresh = await asyncio.to_thread(alerts_after, db=db, after_id=cursor)
            for alert in fresh:
                cursor = alert.id
                data = json.dumps(payload(alert))
                yield f"id: {alert.id}\nevent: alert\ndata: {data}\n\n".encode()
                last_sent = loop.time()
            if loop.time() - last_sent > KEEPALIVE_SECONDS:
                yield b": keep-alive\n\n"
                last_sent = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), POLL_SECONDS)
    finally:
        broker.unsubscribe(wake)
