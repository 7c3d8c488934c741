"""Which HTTP status each privplate error answers with: one table for the API and the console
(the console answers a re-shown form's bad input with 422 on top of it)."""

from __future__ import annotations

from privplate import errors as e
from privplate.retention.holds import HoldRefused

#: First match wins: subclasses before their bases.
STATUS: list[tuple[type[e.PrivplateError], int]] = [
    (e.AuthenticationFailed, 401),
    (e.DeviceNotAllowed, 403),
    (e.DeviceRejected, 401),
    (e.PermissionDenied, 403),
    (e.PurposeDenied, 403),
    (e.UnsealRefused, 403),
    (e.ApprovalRefused, 403),
    (e.EvidenceExpired, 410),
    (e.EnrolmentCodeExpired, 410),
    (HoldRefused, 403),
    (e.QuotaExceeded, 429),
    (e.TooManyAttempts, 429),
    (e.NotFound, 404),
    (e.AlreadyExists, 409),
    (e.Conflict, 409),
    (e.EpochKeyDestroyed, 410),
    (e.InvalidPlate, 400),
    (e.IngestRejected, 400),
    (e.InvalidRequest, 400),
    (e.StoreError, 503),
    (e.ConfigError, 500),
]


def status_for(exc: e.PrivplateError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400
