"""Checkpoints as C2SP signed notes, and witnesses' cosignatures.

``audit_checkpoints.format`` says what a row's signature covers: 1 for privplate's v1 body
(every row signed before this revision, which keeps verifying), 2 for a C2SP tlog-checkpoint
signed note. One step per table, so the witnesses' table is one more pair of calls.

Revision ID: 0014_checkpoint_notes
Revises: 0013_search_approvals
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0014_checkpoint_notes"
down_revision = "0013_search_approvals"
branch_labels = None
depends_on = None


def _add_checkpoint_format() -> None:
    # The server default fills the existing rows with 1: they were signed in the v1 body.
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("format", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )


def _drop_checkpoint_format() -> None:
    # Note rows stay: a downgrade never destroys signed history (the older code reports them
    # as checkpoints whose signature it cannot check).
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_column("format")


def _create_cosignatures() -> None:
    # One row per witness key and tree size (the latest cosignature for it); the key and the
    # cosigned root are kept so each row verifies on its own (store/witness_models.py).
    op.create_table(
        "audit_cosignatures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("witness", sa.String(length=200), nullable=False),
        sa.Column("witness_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_cosignatures")),
        sa.UniqueConstraint(
            "witness_key", "tree_size", name=op.f("uq_audit_cosignatures_witness_key_tree_size")
        ),
    )
    with op.batch_alter_table("audit_cosignatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_cosignatures_tree_size"), ["tree_size"], unique=False
        )


def _drop_cosignatures() -> None:
    with op.batch_alter_table("audit_cosignatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_cosignatures_tree_size"))
    op.drop_table("audit_cosignatures")


def upgrade() -> None:
    _add_checkpoint_format()
    _create_cosignatures()


def downgrade() -> None:
    _drop_cosignatures()
    _drop_checkpoint_format()
