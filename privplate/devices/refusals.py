"""Refused device requests go on the record without letting a flood grow the audit log.

Anyone can send a badly signed request to /ingest, so auditing each one would let an
unauthenticated client append to the log at line rate. The first refusal of a kind (reason
and path) in a window is audited at once; the same refusals within the window are counted, and
the count goes into the next entry of that kind, or is flushed when the server stops.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from privplate.audit import AuditLog

#: Distinct kinds tracked at once; beyond that, refusals are grouped by path alone.
MAX_KINDS = 256


@dataclass
class _Window:
    opened: float
    suppressed: int
    reason: str


class RefusalLog:
    def __init__(
        self,
        audit: AuditLog,
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.audit = audit
        self.window = window_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[tuple[str, str], _Window] = {}

    def _kind(self, reason: str, path: str) -> tuple[str, str]:
        # Numbers vary (clock skew, sizes) without making a refusal a different kind.
        key = (re.sub(r"\d+", "N", reason), path)
        if key not in self._kinds and len(self._kinds) >= MAX_KINDS:
            return ("(several reasons)", path)
        return key

    def refused(self, *, path: str, reason: str) -> None:
        now = self.clock()
        with self._lock:
            key = self._kind(reason, path)
            window = self._kinds.get(key)
            if window is not None and now - window.opened < self.window:
                window.suppressed += 1
                return
            before = window.suppressed if window is not None else 0
            self._kinds[key] = _Window(opened=now, suppressed=0, reason=reason)
        self._record(path, reason, before)

    def flush(self) -> None:
        """Audit the refusals counted but not yet recorded (at shutdown)."""
        with self._lock:
            pending = [(path, w.reason, w.suppressed) for (_, path), w in self._kinds.items()]
            self._kinds.clear()
        for path, reason, count in pending:
            if count:
                self._record(path, reason, count, flushed=True)

    def _record(self, path: str, reason: str, unrecorded: int, *, flushed: bool = False) -> None:
        # ``unrecorded``: refusals of this kind counted since its previous entry, not audited.
        details: dict[str, object] = {"path": path, "reason": reason}
        if unrecorded:
            details["similar_refusals_not_recorded"] = unrecorded
        if flushed:
            details["flushed_at_shutdown"] = True
        self.audit.record(actor="anonymous", action="devices.request_refused", details=details)
