"""Two-person unseal: evidence keys, share sets and commitments, requests, approvals.

Revision ID: 0005_unseal
Revises: 0004_server
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0005_unseal"
down_revision = "0004_server"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_keys",
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("activated_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("public_key", name=op.f("pk_evidence_keys")),
    )
    op.create_table(
        "share_commitments",
        sa.Column("share_set_id", sa.Uuid(), nullable=False),
        sa.Column("share_index", sa.Integer(), nullable=False),
        sa.Column("officer", sa.String(length=100), nullable=False),
        sa.Column("commitment", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("share_set_id", "share_index", name=op.f("pk_share_commitments")),
    )
    op.create_table(
        "share_sets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("officers", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("superseded_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_share_sets")),
    )
    with op.batch_alter_table("share_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_share_sets_public_key"), ["public_key"], unique=False)

    op.create_table(
        "unseal_approvals",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("share_index", sa.Integer(), nullable=False),
        sa.Column("officer", sa.String(length=100), nullable=False),
        sa.Column("partial", sa.LargeBinary(length=32), nullable=False),
        sa.Column("proof", sa.LargeBinary(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "share_index", name=op.f("pk_unseal_approvals")),
        sa.UniqueConstraint(
            "request_id", "officer", name=op.f("uq_unseal_approvals_request_id_officer")
        ),
    )
    op.create_table(
        "unseal_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("evidence_observed_at", UTCDateTime(), nullable=False),
        sa.Column("share_set_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column("justification", sa.String(length=2000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("release_box", sa.LargeBinary(), nullable=True),
        sa.Column("release_expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unseal_requests")),
    )
    with op.batch_alter_table("unseal_requests", schema=None) as batch_op:
        batch_op.create_index("ix_unseal_requests_status", ["status", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unseal_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_unseal_requests_status")

    op.drop_table("unseal_requests")
    op.drop_table("unseal_approvals")
    with op.batch_alter_table("share_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_sets_public_key"))

    op.drop_table("share_sets")
    op.drop_table("share_commitments")
    op.drop_table("evidence_keys")
