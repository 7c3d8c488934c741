"""Canonical plates, plate tokens and the epoch keyring."""

from privplate.tokens.canonical import (
    DEFAULT_CONFUSABLES,
    MAX_PLATE_LENGTH,
    canonical_plate,
    validate_fold_table,
)
from privplate.tokens.plate_token import (
    EPOCH_KEY_BYTES,
    TOKEN_BYTES,
    TOKEN_DOMAIN,
    plate_token,
    tokens_equal,
)

__all__ = [
    "DEFAULT_CONFUSABLES",
    "EPOCH_KEY_BYTES",
    "MAX_PLATE_LENGTH",
    "TOKEN_BYTES",
    "TOKEN_DOMAIN",
    "canonical_plate",
    "plate_token",
    "tokens_equal",
    "validate_fold_table",
]
