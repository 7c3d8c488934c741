"""Wakes SSE streams when this process records an alert. Streams also poll the database, so
alerts recorded by other server processes reach them too, a little later."""

from __future__ import annotations

import asyncio
import threading


class AlertBroker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

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
