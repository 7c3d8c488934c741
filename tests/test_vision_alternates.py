"""Alternates and priors from per-slot probability tables (pure numpy, no model)."""

from __future__ import annotations

import math

import pytest

np = pytest.importorskip("numpy")

from privplate.vision.alternates import choose, k_best, slot_confidence  # noqa: E402
from privplate.vision.priors import FormatPrior  # noqa: E402
from privplate.vision.types import SlotProbabilities  # noqa: E402

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"


def table(*slots: dict[str, float]) -> SlotProbabilities:
    probs = np.zeros((len(slots), len(ALPHABET)), dtype=np.float32)
    for row, slot in enumerate(slots):
        rest = 1.0 - sum(slot.values())
        for ch, p in slot.items():
            probs[row, ALPHABET.index(ch)] = p
        probs[row, ALPHABET.index("_") if "_" not in slot else 0] += rest
    return SlotProbabilities(probs, ALPHABET, "_")


def test_best_reading_is_the_argmax_and_alternates_follow_in_order() -> None:
    slots = table({"A": 1.0}, {"B": 0.6, "8": 0.4}, {"0": 0.9, "O": 0.1}, {"_": 1.0})
    cands = k_best(slots)
    assert [c.text for c in cands[:4]] == ["AB0", "A80", "ABO", "A8O"]
    assert math.isclose(cands[0].probability, 0.54, rel_tol=1e-4)
    best, alternates = choose(cands, ratio=0.1, limit=5)  # type: ignore[misc]
    assert best.text == "AB0"
    # 0.06 and 0.04 are within 0.1 x 0.54 only for the first of them.
    assert [a.text for a in alternates] == ["A80", "ABO"]
    best, alternates = choose(cands, ratio=0.1, limit=1)  # type: ignore[misc]
    assert [a.text for a in alternates] == ["A80"]


def test_padding_positions_merge_into_one_reading() -> None:
    slots = table({"A": 1.0}, {"_": 0.5, "1": 0.5}, {"1": 0.5, "_": 0.5})
    cands = {c.text: c.probability for c in k_best(slots)}
    # "A1_" and "A_1" are the same plate: their probabilities add up.
    assert math.isclose(cands["A1"], 0.5, rel_tol=1e-4)
    assert math.isclose(cands["A11"], 0.25, rel_tol=1e-4)


def test_prior_reorders_only_plausible_readings() -> None:
    # Plates of this region almost never use the letter O.
    counts = {c: 100 for c in "0123456789ABCDEFGHIJKLMNPQRSTUVWXYZ"} | {"O": 1}
    prior = FormatPrior.from_counts("test", counts)
    close = k_best(table({"7": 1.0}, {"O": 0.55, "0": 0.45}))
    assert choose(close, ratio=0.05, limit=3)[0].text == "7O"  # type: ignore[index]
    assert choose(close, ratio=0.05, limit=3, rescore=prior.score)[0].text == "70"  # type: ignore[index]
    far = k_best(table({"7": 1.0}, {"O": 0.95, "0": 0.05}))
    # 0.05 is below the prior's window (0.2 of the best): the OCR's reading stands.
    assert choose(far, ratio=0.01, limit=3, rescore=prior.score)[0].text == "7O"  # type: ignore[index]


def test_slot_confidence_and_empty_tables() -> None:
    assert slot_confidence(table({"A": 0.5, "4": 0.5}, {"_": 1.0})) == pytest.approx(0.75)
    assert choose([], ratio=0.1, limit=3) is None
    nothing = k_best(table({"_": 1.0}, {"_": 1.0}))
    assert nothing[0].text == ""
    assert choose(nothing, ratio=1e-9, limit=3) is None


def test_repr_never_shows_the_text() -> None:
    cands = k_best(table({"Q": 1.0}, {"X": 1.0}, {"Z": 1.0}))
    assert "QXZ" not in repr(cands[0])
