"""Format priors: how often each character appears on a region's plates.

OCR is most often unsure between look-alikes of different kinds (O/0, I/1, B/8, S/5). How often
a region's plates actually use each character resolves many of those ties: a prior holds
per-character counts (no plates) measured on a labelled set kept apart from any evaluation, and
adds ``weight * log P(char | letter or digit)`` to a reading's OCR log-probability.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from privplate.errors import ConfigError

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class FormatPrior:
    name: str
    log_probs: dict[str, float]
    source: str = ""
    weight: float = 1.0

    @classmethod
    def from_counts(
        cls, name: str, counts: dict[str, int], *, source: str = "", weight: float = 1.0
    ) -> FormatPrior:
        log_probs: dict[str, float] = {}
        for group in (DIGITS, LETTERS):
            # Add-half smoothing: a character never seen in the reference set stays possible.
            total = sum(counts.get(c, 0) for c in group) + 0.5 * len(group)
            for ch in group:
                log_probs[ch] = math.log((counts.get(ch, 0) + 0.5) / total)
        return cls(name, log_probs, source, weight)

    def score(self, text: str, ocr_log_probability: float) -> float:
        floor = min(self.log_probs.values())
        return ocr_log_probability + self.weight * sum(self.log_probs.get(c, floor) for c in text)


def count_characters(plates: Iterable[str]) -> dict[str, int]:
    """Per-character counts of a labelled set: what a prior file stores (never the plates)."""
    counts: Counter[str] = Counter(c for p in plates for c in p if c in DIGITS or c in LETTERS)
    return dict(sorted(counts.items()))


def load_prior(path: Path, *, weight: float = 1.0) -> FormatPrior:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        counts = {str(k): int(v) for k, v in data["counts"].items()}
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"format prior {path} is unreadable ({type(exc).__name__}); it needs a [counts] "
            "table of character counts"
        ) from None
    return FormatPrior.from_counts(
        str(data.get("name", path.stem)), counts, source=str(data.get("source", "")), weight=weight
    )
