"""Times in request bodies: RFC 3339 text with a time zone, nothing else.

Pydantic's lax mode would also take a number (seconds since 1970) or a zone-less time, both of
which a caller can send by mistake and both of which would be read as a time nobody meant.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: object) -> object:
    if isinstance(value, datetime):  # built in Python (e.g. an edge preparing a batch)
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    raise ValueError("a time must be RFC 3339 text with a time zone, e.g. 2026-11-22T08:00:00Z")


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
