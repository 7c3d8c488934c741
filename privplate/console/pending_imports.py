"""CSV imports between their preview and their confirmation, held in the server's memory.

Why here and not in the page: the preview's answer would otherwise have to carry the file
(every plate in it) back to the browser, in a hidden field, to be posted again on confirm. Held
here, the plates never return to the browser at all: the preview page carries only a random id,
and the confirmation posts that id. A pending import belongs to the session that uploaded it,
is used once, lives a few minutes, and each session has at most one (a new upload replaces
it), so memory stays bounded. ``privplate serve`` runs one worker process; after a restart the
operator simply uploads the file again.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

TTL_SECONDS = 15 * 60
MAX_PENDING = 64


@dataclass(frozen=True)
class PendingImport:
    owner: bytes  # SHA-256 of the session token: the same session must confirm
    hotlist: str
    text: str = field(repr=False)
    created: float


class PendingImports:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, PendingImport] = {}

    @staticmethod
    def owner_of(session_token: str) -> bytes:
        return hashlib.sha256(session_token.encode()).digest()

    def _expire(self, now: float) -> None:
        for key in [k for k, v in self._items.items() if now - v.created > TTL_SECONDS]:
            del self._items[key]

    def put(self, *, session_token: str, hotlist: str, text: str) -> str:
        owner = self.owner_of(session_token)
        now = time.monotonic()
        key = secrets.token_urlsafe(18)
        with self._lock:
            self._expire(now)
            for other in [k for k, v in self._items.items() if v.owner == owner]:
                del self._items[other]
            while len(self._items) >= MAX_PENDING:  # the oldest goes first
                del self._items[min(self._items, key=lambda k: self._items[k].created)]
            self._items[key] = PendingImport(owner, hotlist, text, now)
        return key

    def take(self, *, session_token: str, hotlist: str, key: str) -> str | None:
        """The CSV text of this session's pending import of ``hotlist``, removed; None when
        there is none (expired, already imported, replaced, or someone else's)."""
        owner = self.owner_of(session_token)
        with self._lock:
            self._expire(time.monotonic())
            item = self._items.get(key)
            if item is None or item.owner != owner or item.hotlist != hotlist:
                return None
            del self._items[key]
            return item.text
