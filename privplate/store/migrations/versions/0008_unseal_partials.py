"""Unseal partials that a copy of the database cannot combine.

Officers' partial decryptions are stored only as AEAD ciphertext under a subkey of the server
secret (keys/server.key), bound to their request and share index; at most one request
per evidence item is open (pending) at a time. Plaintext partials of an older database are
erased: pending requests need their approvals again. Of several pending requests for one item
the oldest stays open and the others end (status ``expired``, with the reason).

Revision ID: 0008_unseal_partials
Revises: 0007_alert_outcomes
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.database import scrub_marker_path

revision = "0008_unseal_partials"
down_revision = "0007_alert_outcomes"
branch_labels = None
depends_on = None

_OPEN = sa.text("status = 'pending'")


def upgrade() -> None:
    bind = op.get_bind()
    erased = bind.execute(sa.text("DELETE FROM unseal_approvals")).rowcount
    if erased and bind.dialect.name == "sqlite":
        # The erased plaintext stays in free space inside pages and in the WAL until a scrub:
        # the next purge zeroes every table. (PostgreSQL: dead tuples stay until VACUUM.)
        scrub_marker_path(bind.engine.url.render_as_string(hide_password=False)).touch(mode=0o600)
    with op.batch_alter_table("unseal_approvals", schema=None) as batch_op:
        batch_op.drop_column("partial")
        batch_op.drop_column("proof")
        batch_op.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=False))

    requests = sa.table(
        "unseal_requests",
        sa.column("id", sa.Uuid()),
        sa.column("evidence_id", sa.Uuid()),
        sa.column("created_at", sa.DateTime()),
        sa.column("status", sa.String()),
        sa.column("reason", sa.String()),
    )
    older = requests.alias("older")
    has_older_open = (
        sa.select(older.c.id)
        .where(
            older.c.evidence_id == requests.c.evidence_id,
            older.c.status == "pending",
            sa.or_(
                older.c.created_at < requests.c.created_at,
                sa.and_(older.c.created_at == requests.c.created_at, older.c.id < requests.c.id),
            ),
        )
        .exists()
    )
    op.execute(
        requests.update()
        .where(requests.c.status == "pending", has_older_open)
        .values(
            status="expired",
            reason="ended by the upgrade to one open request per evidence item; file again "
            "once the open request for this item has ended",
        )
    )
    with op.batch_alter_table("unseal_requests", schema=None) as batch_op:
        batch_op.create_index(
            "uq_unseal_requests_open",
            ["evidence_id"],
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )


def downgrade() -> None:
    with op.batch_alter_table("unseal_requests", schema=None) as batch_op:
        batch_op.drop_index("uq_unseal_requests_open")
    op.execute("DELETE FROM unseal_approvals")
    with op.batch_alter_table("unseal_approvals", schema=None) as batch_op:
        batch_op.drop_column("sealed")
        batch_op.add_column(sa.Column("partial", sa.LargeBinary(length=32), nullable=False))
        batch_op.add_column(sa.Column("proof", sa.LargeBinary(length=64), nullable=False))
