"""A second person for searches: pending searches whose plate is kept only as ciphertext.

``search_approvals`` holds a search filed for approval (who asked, purpose, case number,
justification, window) with its plate sealed to the request's id under a server subkey
(SPEC §10.6); the ciphertext is erased when the search runs, is denied or expires.

Revision ID: 0013_search_approvals
Revises: 0012_search_reviews
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0013_search_approvals"
down_revision = "0012_search_reviews"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_approvals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column("justification", sa.String(length=2000), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=True),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("sealed_plate", sa.LargeBinary(), nullable=True),
        sa.Column("query_id", sa.Uuid(), nullable=True),
        sa.Column("ran_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_approvals")),
    )
    with op.batch_alter_table("search_approvals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_search_approvals_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_search_approvals_user_id"), ["user_id"], unique=False)
        batch_op.create_index("ix_search_approvals_status_expires", ["status", "expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("search_approvals", schema=None) as batch_op:
        batch_op.drop_index("ix_search_approvals_status_expires")
        batch_op.drop_index(batch_op.f("ix_search_approvals_user_id"))
        batch_op.drop_index(batch_op.f("ix_search_approvals_created_at"))
    op.drop_table("search_approvals")
