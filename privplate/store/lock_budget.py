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
    #: No batch is made larger than would take this long at the slowest rate per item seen so
    #: far: the cost per row varies about threefold with how many of its pages are cached.
    ceiling: float = 0.07
    pause: float = 0.025
    #: Run after each batch, outside the lock (the purge checkpoints the WAL here).
    between: Callable[[], object] | None = None
    longest_ms: float = 0.0
    _slowest_per_item: float = 0.0

    def done(self, size: int, held: float, *, low: int, high: int) -> int:
        """Record a batch of ``size`` items that held the lock ``held`` seconds; pause; return
        the size for the next batch, within [low, high]."""
        self.longest_ms = max(self.longest_ms, held * 1000)
        if held >= self.target / 4:  # shorter batches are mostly fixed cost, not per item
            self._slowest_per_item = max(self._slowest_per_item, held / max(size, 1))
        # Grow slowly (a fast batch may have found its pages cached), shrink fast.
        scale = min(1.5, max(0.25, self.target / max(held, 1e-4)))
        cap = int(self.ceiling / self._slowest_per_item) if self._slowest_per_item else high
        if self.between is not None:
            self.between()
        time.sleep(self.pause)
        return max(low, min(high, cap, int(size * scale)))
