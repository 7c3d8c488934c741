"""Batches of SQLite work sized to hold the write lock briefly, with room for other writers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class LockBudget:
    """Sizes batches so each write transaction holds the lock about ``target`` seconds.

    After each batch it pauses ``pause`` seconds. SQLite's busy handler polls with growing
    sleeps (1, 2, 5, 10, 15, 20, 25 ms, then 50 and 100 ms), so a writer waiting on a lock that
    is released and retaken at once can miss several releases in a row; a 25 ms gap is longer
    than its polling interval for its first 150 ms of waiting, so it gets in after one batch.
    """

    target: float = 0.05
    pause: float = 0.025
    #: Run after each batch, outside the lock (the purge checkpoints the WAL here).
    between: Callable[[], object] | None = None
    longest_ms: float = 0.0

    def done(self, size: int, held: float, *, low: int, high: int) -> int:
        """Record a batch of ``size`` items that held the lock ``held`` seconds; pause; return
        the size for the next batch, within [low, high]."""
        self.longest_ms = max(self.longest_ms, held * 1000)
        # Grow slowly (a fast batch may have found its pages cached), shrink fast.
        scale = min(1.5, max(0.25, self.target / max(held, 1e-4)))
        if self.between is not None:
            self.between()
        time.sleep(self.pause)
        return max(low, min(high, int(size * scale)))
