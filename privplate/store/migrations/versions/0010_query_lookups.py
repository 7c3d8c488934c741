"""A query's lookup is used once: ``queries.looked_up_at`` marks the answered query whose
tokens were looked up, so the store's lookup can refuse anything but a recorded, answered,
not yet used query.

Revision ID: 0010_query_lookups
Revises: 0009_people
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0010_query_lookups"
down_revision = "0009_people"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("looked_up_at", UTCDateTime(), nullable=True))
    # Queries answered before this revision were looked up already.
    op.execute("UPDATE queries SET looked_up_at = created_at WHERE outcome = 'answered'")


def downgrade() -> None:
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.drop_column("looked_up_at")
