"""One exception hierarchy for the whole package.

Every message says what was wrong and what to do about it. No message ever contains a plate:
callers pass only counts, lengths, identifiers and setting names.
"""

from __future__ import annotations


class PrivplateError(Exception):
    """Base class of every error privplate raises on purpose."""

    #: Process exit code used by the CLI for this kind of failure.
    exit_code = 1


class ConfigError(PrivplateError):
    """The deployment's configuration or key files are missing, unsafe or invalid."""

    exit_code = 78  # EX_CONFIG


class InvalidPlate(PrivplateError, ValueError):
    """A plate could not be canonicalized. The message never echoes the input."""

    exit_code = 65  # EX_DATAERR


class KeyringError(PrivplateError):
    """An epoch key is missing, destroyed or cannot be decrypted."""


class EpochKeyDestroyed(KeyringError):
    """The key of the requested epoch was destroyed by retention (crypto-shredding)."""


class SealingError(PrivplateError):
    """Sealed evidence could not be produced or opened (wrong key, tampered or malformed)."""


class IngestRejected(PrivplateError, ValueError):
    """A batch of reads was refused as a whole; nothing of it was written."""

    exit_code = 65

    def __init__(self, message: str, *, index: int | None = None) -> None:
        self.index = index
        where = f"read #{index}: " if index is not None else ""
        super().__init__(f"batch rejected, nothing stored: {where}{message}")


class UnknownCamera(IngestRejected):
    """A read names a camera that is not registered."""


class NotFound(PrivplateError, LookupError):
    """A named object (camera, epoch, entry) does not exist."""


class AlreadyExists(PrivplateError):
    """An object with this identifier already exists."""


class StoreError(PrivplateError):
    """The database is unreachable or not migrated."""


class AuditError(PrivplateError):
    """The audit log could not be appended to or failed verification."""
