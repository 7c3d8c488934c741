"""Core schema: cameras, epochs, token-only reads and sealed evidence.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.partitions import ensure_partitions_ahead
from privplate.store.types import UTCDateTime

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("device_public_key", sa.LargeBinary(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cameras"),
    )
    op.create_table(
        "epochs",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("kek_generation", sa.Integer(), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("destroyed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_epochs"),
    )
    op.create_index("ix_epochs_starts_at", "epochs", ["starts_at"])
    op.create_index("ix_epochs_ends_at", "epochs", ["ends_at"])
    op.create_table(
        "reads",
        sa.Column("read_id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.LargeBinary(16), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("epoch_id", sa.BigInteger(), nullable=False),
        sa.Column("is_alternate", sa.Boolean(), nullable=False),
        sa.Column("is_hit", sa.Boolean(), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"], name="fk_reads_camera_id_cameras"),
        sa.PrimaryKeyConstraint("observed_at", "read_id", "token", name="pk_reads"),
        postgresql_partition_by="RANGE (observed_at)",
    )
    op.create_index("ix_reads_epoch_token", "reads", ["epoch_id", "token"])
    op.create_index(
        "ix_reads_hits",
        "reads",
        ["observed_at"],
        postgresql_where=sa.text("is_hit"),
        sqlite_where=sa.text("is_hit"),
    )
    op.create_table(
        "evidence",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name="fk_evidence_camera_id_cameras"
        ),
        sa.PrimaryKeyConstraint("observed_at", "id", name="pk_evidence"),
        postgresql_partition_by="RANGE (observed_at)",
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        ensure_partitions_ahead(bind)


def downgrade() -> None:
    op.drop_table("evidence")
    op.drop_table("reads")
    op.drop_table("epochs")
    op.drop_table("cameras")
