"""What came of an alert (confirmed, stop, arrest, misread, ...), for transparency reports.

Revision ID: 0007_alert_outcomes
Revises: 0006_read_counts
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0007_alert_outcomes"
down_revision = "0006_read_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("outcome_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("outcome_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("outcome_at")
        batch_op.drop_column("outcome_by")
        batch_op.drop_column("outcome")
