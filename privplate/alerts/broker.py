"""Wakes SSE streams when an alert is recorded: by this process (Services.ingest, after the
commit) or, on PostgreSQL, by any process of the deployment (privplate.alerts.notify's
listener). While nothing pushes every alert here (SQLite, or the listener disconnected),
``pushed`` is False and streams poll the database for alerts other processes recorded."""

from __future__ import annotations

import asyncio
import threading


class AlertBroker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._pushed = False

    @property
    def pushed(self) -> bool:
        """Whether every alert of the deployment, whichever process records it, wakes this
        broker (the LISTEN connection is up): streams then look only when woken."""
        return self._pushed

    def set_pushed(self, pushed: bool) -> None:
        """The listener connected or lost its connection. Every stream is woken: to catch up
        on what committed while no one listened, or to start polling."""
        self._pushed = pushed
        self.notify()

    def subscribe(self) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._waiters.add((asyncio.get_running_loop(), event))
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters = {w for w in self._waiters if w[1] is not event}

    def notify(self) -> None:
        """Callable from any thread (ingest runs in the threadpool)."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that stream's loop has closed
                self.unsubscribe(event)
