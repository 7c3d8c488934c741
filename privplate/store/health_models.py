"""Edge devices' latest health reports, and the open episodes of the alerts they raise.

Only the latest report is kept, per device and per camera (each report replaces the last):
counts, rates and times, never a plate or a read. Device times are stored on the server's
clock (shifted by the offset the signed request showed), so ages need no device clock.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from privplate.store.models import Base


class DeviceHealth(Base):
    """A device's latest report."""

    __tablename__ = "device_health"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime]
    #: Server time minus the request's signed time: the device clock's lag (plus transit).
    server_offset_seconds: Mapped[float] = mapped_column(Float)
    #: The device's own figure for its clock offset (e.g. from NTP), if it sent one.
    reported_offset_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    version: Mapped[str] = mapped_column(String(64))
    #: JSON {model file name: sha256}.
    models: Mapped[str] = mapped_column(Text)
    spool_depth: Mapped[int] = mapped_column(BigInteger)
    spool_oldest_age_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: The report's interval as the device states it (seconds).
    interval_seconds: Mapped[float] = mapped_column(Float)


class CameraHealth(Base):
    """A camera's figures from its device's latest report."""

    __tablename__ = "camera_health"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    #: First report that named this camera: a camera with no frame yet counts from here.
    first_reported_at: Mapped[datetime]
    received_at: Mapped[datetime]
    frames_per_second: Mapped[float] = mapped_column(Float)
    last_frame_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_read_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: Reads the camera could not make since the edge started (a counter of the device).
    dropped_reads: Mapped[int] = mapped_column(BigInteger)


class HealthEpisode(Base):
    """An open device alert: one per kind and subject (a camera, or a device for a spool
    backlog), so a condition that lasts raises one alert; the row goes when it clears."""

    __tablename__ = "health_episodes"
    __table_args__ = (PrimaryKeyConstraint("kind", "subject"),)

    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    alert_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    opened_at: Mapped[datetime]
    cause: Mapped[str] = mapped_column(String(32))
