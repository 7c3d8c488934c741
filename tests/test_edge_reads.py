"""What leaves the edge for one car: the best reading's token, distinct alternates, a limit."""

from __future__ import annotations

from privplate.edge.reads import _tokens
from privplate.tokens import DEFAULT_CONFUSABLES, canonical_plate, plate_token

KEY = bytes(32)


def token(text: str, fold: dict[str, str] | None = None) -> bytes:
    return plate_token(KEY, canonical_plate(text, fold=fold))


def test_best_first_then_alternates_flagged() -> None:
    got = _tokens(["ABC123", "A8C123", "ABC128"], KEY, None, 8)
    assert [t.token for t in got] == [token("ABC123"), token("A8C123"), token("ABC128")]
    assert [t.is_alternate for t in got] == [False, True, True]


def test_folding_merges_alternates_that_become_the_same_plate() -> None:
    fold = dict(DEFAULT_CONFUSABLES)
    got = _tokens(["ABC123", "A8C123", "ABCI23"], KEY, fold, 8)
    assert [t.token for t in got] == [token("ABC123", fold)]


def test_limit_and_readings_that_are_no_plate() -> None:
    assert len(_tokens(["AB1", "AB2", "AB3", "AB4"], KEY, None, 2)) == 2
    assert _tokens(["ABCDEFGHIJK", "ABC123"], KEY, None, 8) == []  # best reading too long
    got = _tokens(["ABC123", "ABCDEFGHIJK", "ABC124"], KEY, None, 8)
    assert [t.token for t in got] == [token("ABC123"), token("ABC124")]
    assert _tokens([], KEY, None, 8) == []
