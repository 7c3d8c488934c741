"""Edge devices' health reports (the latest per device and per camera), the open episodes of
the alerts they raise, and alerts of other kinds than hotlist hits: an alert gets a kind
("hotlist_hit" for every existing row), the hotlist columns become optional, and a device
alert names its device, its cause, the alert it clears and when it was cleared.

On SQLite the alerts table is rebuilt (a column's NOT NULL cannot be dropped in place). Its
rebuild drops the old table, and dropping it would cascade to the webhook outbox's rows
(ON DELETE CASCADE): they are kept aside in a temporary table and put back.

Revision ID: 0019_device_health
Revises: 0018_mqtt_outbox
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0019_device_health"
down_revision = "0018_mqtt_outbox"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HOTLIST_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("read_id", sa.Uuid()),
    ("hotlist_id", sa.Uuid()),
    ("entry_id", sa.Uuid()),
    ("via_alternate", sa.Boolean()),
    ("confidence", sa.Double()),
)


def _keeping_deliveries(alter: Callable[[], None]) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMP TABLE _keep_deliveries AS SELECT * FROM webhook_deliveries")
    alter()
    if sqlite:
        op.execute("DELETE FROM webhook_deliveries")
        op.execute("INSERT INTO webhook_deliveries SELECT * FROM _keep_deliveries")
        op.execute("DROP TABLE _keep_deliveries")


def upgrade() -> None:
    op.create_table(
        "device_health",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("server_offset_seconds", sa.Float(), nullable=False),
        sa.Column("reported_offset_seconds", sa.Float(), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("spool_depth", sa.BigInteger(), nullable=False),
        sa.Column("spool_oldest_age_seconds", sa.Float(), nullable=True),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_health")),
    )
    op.create_table(
        "camera_health",
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("first_reported_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("frames_per_second", sa.Float(), nullable=False),
        sa.Column("last_frame_at", UTCDateTime(), nullable=True),
        sa.Column("last_read_at", UTCDateTime(), nullable=True),
        sa.Column("dropped_reads", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_camera_health")),
    )
    with op.batch_alter_table("camera_health", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_camera_health_device_id"), ["device_id"])
    op.create_table(
        "health_episodes",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("alert_id", _ID, nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject", name=op.f("pk_health_episodes")),
    )

    def alter() -> None:
        with op.batch_alter_table("alerts", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "kind", sa.String(length=32), server_default="hotlist_hit", nullable=False
                )
            )
            batch_op.add_column(sa.Column("device_id", sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column("cause", sa.String(length=32), nullable=True))
            batch_op.add_column(sa.Column("clears", _ID, nullable=True))
            batch_op.add_column(sa.Column("cleared_at", UTCDateTime(), nullable=True))
            for name, type_ in _HOTLIST_COLUMNS:
                batch_op.alter_column(name, existing_type=type_, nullable=True)

    _keeping_deliveries(alter)


def downgrade() -> None:
    # Device alerts have no hotlist entry: they (and their deliveries) go with the columns.
    op.execute("DELETE FROM webhook_deliveries WHERE alert_id IN "
               "(SELECT id FROM alerts WHERE kind <> 'hotlist_hit')")  # fmt: skip
    op.execute("DELETE FROM alerts WHERE kind <> 'hotlist_hit'")

    def alter() -> None:
        with op.batch_alter_table("alerts", schema=None) as batch_op:
            for name, type_ in _HOTLIST_COLUMNS:
                batch_op.alter_column(name, existing_type=type_, nullable=False)
            batch_op.drop_column("cleared_at")
            batch_op.drop_column("clears")
            batch_op.drop_column("cause")
            batch_op.drop_column("device_id")
            batch_op.drop_column("kind")

    _keeping_deliveries(alter)
    op.drop_table("health_episodes")
    with op.batch_alter_table("camera_health", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_camera_health_device_id"))
    op.drop_table("camera_health")
    op.drop_table("device_health")
