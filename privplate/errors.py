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


class NotReady(StoreError):
    """The server is up but cannot serve yet (database unreachable, schema behind, keys
    missing); ``/readyz`` says which, and the server keeps trying."""


class AuditError(PrivplateError):
    """The audit log could not be appended to or failed verification."""


class InvalidRequest(PrivplateError, ValueError):
    """A request is malformed or breaks a rule; the message says which."""

    exit_code = 65


class AuthenticationFailed(PrivplateError):
    """Credentials were missing or wrong. The message never says which part was wrong."""

    exit_code = 77  # EX_NOPERM


class PermissionDenied(PrivplateError):
    """The caller is known but their role may not do this."""

    exit_code = 77


class PurposeDenied(PrivplateError):
    """A query's purpose, justification or sharing basis is not allowed; it was recorded."""

    exit_code = 77


class QuotaExceeded(PrivplateError):
    """A query or hotlist quota is used up; compliance officers were flagged."""

    exit_code = 75  # EX_TEMPFAIL


class TooManyAttempts(PrivplateError):
    """Too many failed sign-ins for an account or from an address within the window (or
    refused enrolment codes from an address: ``what`` names which).

    The message is the same whichever limit was hit (and whether the account exists);
    ``retry_after`` is how many seconds until another attempt is let through."""

    exit_code = 75  # EX_TEMPFAIL

    def __init__(self, retry_after: int, *, what: str = "failed sign-ins") -> None:
        self.retry_after = max(1, retry_after)
        minutes = -(-self.retry_after // 60)
        super().__init__(
            f"too many {what}; try again in {minutes} minute{'s' if minutes != 1 else ''}"
        )


class EnrolmentCodeExpired(PrivplateError):
    """An enrolment code ran out before it was used; the administrator makes a new one."""

    exit_code = 77


class DeviceRejected(PrivplateError):
    """A device request failed authentication, was replayed, stale or tampered with."""

    exit_code = 77


class DeviceNotAllowed(DeviceRejected):
    """An authenticated device asked for something it may not do (e.g. another camera)."""


class Conflict(PrivplateError):
    """The request conflicts with stored state (e.g. a batch id re-used with other content)."""

    exit_code = 65


class ModelRejected(ConfigError):
    """A model file is not in the registry or its sha256 differs: it is not loaded."""


class SourceError(PrivplateError):
    """A camera, video or image source could not be opened or read."""


class EvidenceExpired(PrivplateError):
    """Retention already purged the evidence item: there is nothing left to unseal."""

    exit_code = 66  # EX_NOINPUT


class UnsealRefused(PrivplateError):
    """An unseal request or approval breaks the two-person rule or the request's state."""

    exit_code = 77


class ApprovalRefused(PrivplateError):
    """A search whose purpose needs a second person's approval has none that counts, or an
    approval breaks the two-person rule or the pending search's state."""

    exit_code = 77
