"""Canonical plates and plate tokens: known-answer vectors and properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privplate.errors import ConfigError, InvalidPlate
from privplate.tokens import (
    DEFAULT_CONFUSABLES,
    canonical_plate,
    plate_token,
    validate_fold_table,
)
from tests.conftest import vectors

CANONICAL = vectors("canonical")["vectors"]
TOKENS = vectors("tokens")["vectors"]
plates = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=10)
messy = st.text(alphabet="abcxyzABC0189 -._/·OIQBSZ", min_size=0, max_size=16)


@pytest.mark.parametrize("vec", CANONICAL, ids=lambda v: repr(v["input"]))
def test_canonical_vectors(vec: dict[str, object]) -> None:
    fold = DEFAULT_CONFUSABLES if vec["fold"] else None
    if "error" in vec:
        with pytest.raises(InvalidPlate, match=str(vec["error"])) as info:
            canonical_plate(str(vec["input"]), fold=fold)
        stripped = str(vec["input"]).strip(" -")
        if stripped:
            assert stripped not in str(info.value), "errors must never echo the plate"
    else:
        assert canonical_plate(str(vec["input"]), fold=fold) == vec["canonical"]


@pytest.mark.parametrize("vec", TOKENS, ids=lambda v: f"{v['canonical']}-{v['epoch_key'][:4]}")
def test_token_vectors(vec: dict[str, str]) -> None:
    assert plate_token(bytes.fromhex(vec["epoch_key"]), vec["canonical"]).hex() == vec["token"]


@given(messy, st.booleans())
def test_canonicalization_is_idempotent(text: str, fold: bool) -> None:
    table = DEFAULT_CONFUSABLES if fold else None
    try:
        once = canonical_plate(text, fold=table)
    except InvalidPlate:
        return
    assert canonical_plate(once, fold=table) == once
    assert 1 <= len(once) <= 10
    assert once.isascii() and once.isalnum() and once.upper() == once


@given(st.text(max_size=20))
def test_invalid_plates_never_echo_input(text: str) -> None:
    try:
        canonical_plate(text)
    except InvalidPlate as exc:
        cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
        if len(cleaned) >= 3:
            assert cleaned not in str(exc)


@pytest.mark.parametrize("wildcard", ["*", "ABC%", "AB_C?", "A.*", "%", "AB[C]"])
def test_wildcards_are_rejected(wildcard: str) -> None:
    with pytest.raises(InvalidPlate):
        canonical_plate(wildcard)


@given(plates, st.binary(min_size=32, max_size=32))
def test_tokens_are_deterministic_within_an_epoch(plate: str, key: bytes) -> None:
    assert plate_token(key, plate) == plate_token(key, plate)
    assert len(plate_token(key, plate)) == 16


@given(plates, st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_tokens_differ_across_epoch_keys(plate: str, key_a: bytes, key_b: bytes) -> None:
    if key_a != key_b:
        assert plate_token(key_a, plate) != plate_token(key_b, plate)


@given(plates, plates)
def test_tokens_differ_across_plates(a: str, b: str) -> None:
    key = hashlib.sha256(b"k").digest()
    if a != b:
        assert plate_token(key, a) != plate_token(key, b)


def test_token_key_length_is_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        plate_token(b"short", "ABC123")


@pytest.mark.parametrize(
    "table",
    [{"O": "00"}, {"o": "0"}, {"B": "8", "8": "3"}, {"*": "0"}],
)
def test_bad_fold_tables_are_refused(table: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"plates\.confusables"):
        validate_fold_table(table)
