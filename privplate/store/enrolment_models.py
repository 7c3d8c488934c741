"""One-time enrolment codes for edge devices (privplate.devices.enrolment).

A row holds only a keyed hash of its code (BLAKE2b under a subkey of the server secret, which
is never in the database): a dump of the table cannot be used to enrol, nor to test guesses.
A code is used at most once: the one UPDATE that sets ``used_at`` decides, on every backend
and across every server process.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from privplate.store.models import Base


class EnrolmentCode(Base):
    __tablename__ = "enrolment_codes"

    #: Names the code on the record (audit entries, the admin's output), never the code.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    #: Keyed BLAKE2b of the normalized code.
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    #: JSON list of the camera ids the enrolled device will report for.
    cameras: Mapped[str] = mapped_column(Text)
    #: The device's human-readable name, if the administrator gave one.
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: The device registered with the code (no foreign key: the record outlives a device row).
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
