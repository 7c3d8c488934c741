"""People, not accounts: every account names the person it belongs to.

Two-person checks (unseal requester and approvers, officers among themselves, legal holds)
compare people. Each existing account becomes its own person, named after the account.

Revision ID: 0009_people
Revises: 0008_unseal_partials
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_people"
down_revision = "0008_unseal_partials"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person", sa.String(length=100), nullable=True))
    users = sa.table("users", sa.column("name", sa.String), sa.column("person", sa.String))
    op.execute(users.update().values(person=users.c.name))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("person", existing_type=sa.String(length=100), nullable=False)
        batch_op.create_index(batch_op.f("ix_users_person"), ["person"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_person"))
        batch_op.drop_column("person")
