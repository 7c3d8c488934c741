"""Per camera and day totals of stored reads, for transparency reports.

Revision ID: 0006_read_counts
Revises: 0005_unseal
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_read_counts"
down_revision = "0005_unseal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "read_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("reads", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "camera_id", name=op.f("pk_read_counts")),
    )


def downgrade() -> None:
    op.drop_table("read_counts")
