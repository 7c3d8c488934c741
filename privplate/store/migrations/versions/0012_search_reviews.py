"""Spot checks: the compliance review queue of drawn and near-term searches and hotlist entries.

``spot_checks`` holds one row per drawn subject (a search or a hand-made hotlist entry), why it
was drawn (random, near-term with the terms), and the one verdict a compliance officer records
on it. It points at its subject by id and holds no plate.

Revision ID: 0012_search_reviews
Revises: 0011_sign_in
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0012_search_reviews"
down_revision = "0011_sign_in"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spot_checks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("requester", sa.String(length=200), nullable=False),
        sa.Column("drawn_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("verdict", sa.String(length=24), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_checks")),
        sa.UniqueConstraint(
            "subject_kind", "subject_id", name=op.f("uq_spot_checks_subject_kind_subject_id")
        ),
    )
    with op.batch_alter_table("spot_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spot_checks_drawn_at"), ["drawn_at"], unique=False)
        batch_op.create_index("ix_spot_checks_open", ["reviewed_at", "drawn_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("spot_checks", schema=None) as batch_op:
        batch_op.drop_index("ix_spot_checks_open")
        batch_op.drop_index(batch_op.f("ix_spot_checks_drawn_at"))
    op.drop_table("spot_checks")
