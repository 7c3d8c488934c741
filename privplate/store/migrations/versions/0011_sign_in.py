"""Sign-in throttling and idle sessions.

``sign_in_failures`` counts failed sign-ins by a keyed hash of the account name or the client
address, shared by every server worker. Sessions get a public ``id`` (listed and revoked by
their owner without the token) and ``last_used_at`` (idle sessions are refused); existing
sessions count as last used when they were opened.

Revision ID: 0011_sign_in
Revises: 0010_query_lookups
Create Date: 2026-12-03
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0011_sign_in"
down_revision = "0010_query_lookups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("failed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sign_in_failures_failed_at"), ["failed_at"], unique=False
        )
        batch_op.create_index("ix_sign_in_failures_key_failed_at", ["key", "failed_at"])

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", UTCDateTime(), nullable=True))
    # A fresh random id per existing session, set from Python: neither dialect offers a
    # random UUID function the other has.
    sessions = sa.table(
        "sessions",
        sa.column("token_hash", sa.LargeBinary()),
        sa.column("id", sa.Uuid()),
        sa.column("created_at", UTCDateTime()),
        sa.column("last_used_at", UTCDateTime()),
    )
    conn = op.get_bind()
    for (token_hash,) in conn.execute(sa.select(sessions.c.token_hash)).all():
        conn.execute(
            sessions.update()
            .where(sessions.c.token_hash == token_hash)
            .values(id=uuid.uuid4(), last_used_at=sessions.c.created_at)
        )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.alter_column("id", existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column("last_used_at", existing_type=UTCDateTime(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_sessions_id"), ["id"])


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_sessions_id"), type_="unique")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("id")

    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failures_key_failed_at")
        batch_op.drop_index(batch_op.f("ix_sign_in_failures_failed_at"))
    op.drop_table("sign_in_failures")
