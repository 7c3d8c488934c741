"""From per-slot probabilities to the best readings.

The OCR predicts each slot independently, so the joint probability of a reading is the product
of its slots' probabilities. A beam over slots finds the most probable readings; readings that
differ only by where padding falls are the same plate and their probabilities add up.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from privplate.vision.types import Candidate, SlotProbabilities

#: Scores a reading given its OCR log-probability; the character prior and the plate formats
#: plug in here (each adds its own term).
Rescorer = Callable[[str, float], float]


def combine(*rescorers: Rescorer | None) -> Rescorer | None:
    """One rescorer adding every given one's term (None when none is given)."""
    used = [r for r in rescorers if r is not None]
    if not used:
        return None
    if len(used) == 1:
        return used[0]

    def rescore(text: str, log_probability: float) -> float:
        for r in used:
            log_probability = r(text, log_probability)
        return log_probability

    return rescore


def k_best(slots: SlotProbabilities, *, beam: int = 24, per_slot: int = 3) -> list[Candidate]:
    """The most probable distinct readings, most probable first.

    The empty reading (every slot padding) is kept: it is how the OCR says "no plate here".
    """
    logp = np.log(np.clip(slots.probs, 1e-12, 1.0))
    beams: list[tuple[float, str]] = [(0.0, "")]
    for row in logp:
        top = np.argsort(-row)[:per_slot]
        grown = [
            (score + float(row[i]), text + slots.alphabet[i]) for score, text in beams for i in top
        ]
        grown.sort(key=lambda item: -item[0])
        beams = grown[:beam]
    merged: dict[str, float] = {}
    for score, text in beams:
        reading = text.replace(slots.pad, "")
        merged[reading] = merged.get(reading, 0.0) + math.exp(score)
    return [Candidate(t, p) for t, p in sorted(merged.items(), key=lambda kv: -kv[1])]


def choose(
    candidates: list[Candidate],
    *,
    ratio: float,
    limit: int,
    rescore: Rescorer | None = None,
    prior_ratio: float = 0.2,
    prefer: Callable[[str], bool] | None = None,
) -> tuple[Candidate, tuple[Candidate, ...]] | None:
    """Best reading, and up to ``limit`` alternates within ``ratio`` of the most probable one.

    A prior may only choose the best among readings within ``prior_ratio`` of the most
    probable one: it reorders what the OCR finds plausible, never brings in the implausible.
    Alternates ``prefer`` accepts (those matching a declared plate format) come first, each
    group most probable first: which alternates fit in ``limit`` changes, never which qualify.
    """
    if not candidates or not candidates[0].text:
        return None
    top = candidates[0].probability
    best = candidates[0]
    if rescore is not None:
        plausible = [c for c in candidates if c.text and c.probability >= top * prior_ratio]
        best = max(plausible, key=lambda c: rescore(c.text, math.log(c.probability)))
    others = [c for c in candidates if c.text and c is not best and c.probability >= top * ratio]
    if prefer is not None:
        others.sort(key=lambda c: not prefer(c.text))  # stable: probability order within
    return best, tuple(others[:limit])


def slot_confidence(slots: SlotProbabilities) -> float:
    """Mean of each slot's winning probability: how sure the OCR is of its argmax reading."""
    return float(slots.probs.max(axis=1).mean())
