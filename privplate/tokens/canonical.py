"""Canonical plate text: the only form that is ever tokenized.

Edge and server must agree byte for byte, so the rules are few and the confusable-folding table
is part of the deployment configuration (see crypto/SPEC.md, "Canonicalization").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

from privplate.errors import ConfigError, InvalidPlate

MAX_PLATE_LENGTH = 10

#: Characters OCR and people most often confuse on plates, folded to the digit. Applied only
#: when a deployment turns folding on, identically at the edge and the server.
DEFAULT_CONFUSABLES: Mapping[str, str] = MappingProxyType(
    {"O": "0", "I": "1", "Q": "0", "B": "8", "S": "5", "Z": "2"}
)

# Separators people type or that plates print between groups; removed, never rejected.
_SEPARATORS = re.compile("[ \t\n\r\f\v\\-._/\u00b7]+")
_CANONICAL = re.compile(rf"[A-Z0-9]{{1,{MAX_PLATE_LENGTH}}}")
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def validate_fold_table(table: Mapping[str, str]) -> Mapping[str, str]:
    """Check a confusable table is usable: single A-Z0-9 characters and idempotent folding."""
    for source, target in table.items():
        if len(source) != 1 or len(target) != 1 or {source, target} - _ALNUM:
            raise ConfigError(
                "plates.confusables must map single characters A-Z/0-9 to single characters "
                "A-Z/0-9; fix the table in privplate.toml"
            )
        if target in table:
            # A chain such as B->8, 8->3 would make canonicalization non-idempotent.
            raise ConfigError(
                "plates.confusables must not map a character to another folded character "
                "(folding must be idempotent); fix the table in privplate.toml"
            )
    return MappingProxyType(dict(table))


def canonical_plate(text: str, *, fold: Mapping[str, str] | None = None) -> str:
    """Return the canonical form of ``text``: upper-case A-Z0-9, 1..10 characters.

    White space, hyphens, dots, underscores, slashes and middle dots are dropped; any other
    character is an error, so a wildcard such as ``*`` or ``%`` can never reach a lookup. The
    error never repeats the input (it may state its length).
    """
    if not isinstance(text, str):
        raise InvalidPlate("plate must be text")
    # NFKC maps full-width and other compatibility forms to ASCII; after it only ASCII is
    # accepted, and upper-casing is ASCII-only, so every implementation agrees byte for byte.
    normalized = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))
    if not normalized.isascii():
        raise InvalidPlate(
            "plate may contain only letters A-Z and digits 0-9 (spaces and hyphens are "
            "ignored; wildcards are not allowed)"
        )
    compact = normalized.upper()
    if not compact:
        raise InvalidPlate("plate is empty: give the characters printed on the plate")
    if not _CANONICAL.fullmatch(compact):
        if len(compact) > MAX_PLATE_LENGTH:
            raise InvalidPlate(
                f"plate is too long ({len(compact)} characters after removing separators; "
                f"at most {MAX_PLATE_LENGTH})"
            )
        raise InvalidPlate(
            "plate may contain only letters A-Z and digits 0-9 (spaces and hyphens are "
            "ignored; wildcards are not allowed)"
        )
    if fold:
        validate_fold_table(fold)
        compact = "".join(fold.get(ch, ch) for ch in compact)
    return compact


def is_canonical(text: str) -> bool:
    return _CANONICAL.fullmatch(text) is not None
