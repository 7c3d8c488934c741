"""Console CSV imports between preview and confirmation, shared by every worker.

``pending_imports`` holds an uploaded file only as ciphertext under a server subkey (never in
the database), bound to the uploading session's token hash; a row is deleted when confirmed,
replaced, or expired. Before this the file was held in one process's memory, so with several
workers a confirmation reaching another worker failed.

Revision ID: 0016_pending_imports
Revises: 0015_webhook_outbox
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0016_pending_imports"
down_revision = "0015_webhook_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_imports",
        sa.Column("id", sa.LargeBinary(length=32), nullable=False),
        sa.Column("owner", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hotlist", sa.String(length=100), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_imports")),
        sa.UniqueConstraint("owner", name=op.f("uq_pending_imports_owner")),
    )
    with op.batch_alter_table("pending_imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_imports_created_at"), ["created_at"])
        batch_op.create_index(batch_op.f("ix_pending_imports_expires_at"), ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("pending_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_imports_expires_at"))
        batch_op.drop_index(batch_op.f("ix_pending_imports_created_at"))
    op.drop_table("pending_imports")
