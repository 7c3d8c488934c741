"""The HTTP status of a form that is shown again with a refusal in it.

The API maps errors to statuses in privplate.api.errors, which imports the console: importing
it back would make a cycle, so the few refusals a form can meet are listed here.
"""

from __future__ import annotations

from privplate import errors as e
from privplate.retention.holds import HoldRefused

_STATUS: tuple[tuple[type[e.PrivplateError], int], ...] = (
    (e.AuthenticationFailed, 401),
    (e.PermissionDenied, 403),
    (e.PurposeDenied, 403),
    (e.UnsealRefused, 403),
    (HoldRefused, 403),
    (e.EvidenceExpired, 410),
    (e.QuotaExceeded, 429),
    (e.NotFound, 404),
    (e.AlreadyExists, 409),
    (e.Conflict, 409),
    (e.StoreError, 503),
)


def status_of(exc: e.PrivplateError) -> int:
    """The status a refused form answers with (422 for bad input and anything unlisted)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 422
