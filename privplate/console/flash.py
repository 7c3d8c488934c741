"""A refusal's words carried from a POST to the page its redirect opens (Post/Redirect/Get).

Why: a form that holds a plate (the hotlist entry form) must never be answered by a page of
its own. Chromium keeps the body of a POST that a page answered in the tab's session history
(the profile's Sessions files, on disk) so that it can post it again on restore; a 303 answer
replaces that history entry with the GET it redirects to, and the body is gone. So a refused
entry is answered with a redirect too, and its refusal (the service's words, which never hold a
plate) waits here, in the server's memory, for the next page of the same session.

One message per session, taken once, kept a few minutes: memory stays bounded.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from starlette.requests import Request

TTL_SECONDS = 5 * 60
MAX_MESSAGES = 1024


@dataclass(frozen=True)
class _Message:
    text: str
    page: str  # the path of the page that shows it, so no other page shows it by mistake
    created: float


class Flashes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[bytes, _Message] = {}

    @staticmethod
    def _owner(session_token: str) -> bytes:
        return hashlib.sha256(session_token.encode()).digest()

    def put(self, session_token: str, *, page: str, text: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._items.items() if now - v.created > TTL_SECONDS]:
                del self._items[key]
            while len(self._items) >= MAX_MESSAGES:  # the oldest goes first
                del self._items[min(self._items, key=lambda k: self._items[k].created)]
            self._items[self._owner(session_token)] = _Message(text, page, now)

    def take(self, session_token: str, *, page: str) -> str:
        """This session's message for ``page`` (removed), or "" when there is none."""
        owner = self._owner(session_token)
        with self._lock:
            found = self._items.get(owner)
            if found is None or found.page != page:
                return ""
            del self._items[owner]
        if time.monotonic() - found.created > TTL_SECONDS:
            return ""
        return found.text


_lock = threading.Lock()


def flashes(request: Request) -> Flashes:
    """The app's one store (made on first use)."""
    with _lock:
        found: Flashes | None = getattr(request.app.state, "console_flashes", None)
        if found is None:
            found = Flashes()
            request.app.state.console_flashes = found
        return found
