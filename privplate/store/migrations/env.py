"""Alembic environment: always runs on the connection privplate hands it."""

from __future__ import annotations

from alembic import context

from privplate.store import (  # noqa: F401 - registers tables
    approval_models,
    enrolment_models,
    health_models,
    outbox_models,
    pending_import_models,
    review_models,
    server_models,
    unseal_models,
    witness_models,
)
from privplate.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through privplate (privplate init / doctor), not alembic")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
