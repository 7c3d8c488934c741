"""The HTTP status of a form that is shown again with a refusal in it: the API's (one table,
privplate.http_status), except that bad input answers 422, the form being re-shown."""

from __future__ import annotations

from privplate.errors import PrivplateError
from privplate.http_status import status_for


def status_of(exc: PrivplateError) -> int:
    status = status_for(exc)
    return 422 if status == 400 else status
