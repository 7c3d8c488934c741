"""A new migration checked against its model: downgraded below it, the table is gone; upgraded
to head, autogenerate finds no difference for the table."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from privplate.deployment import Deployment
from privplate.store.database import MIGRATIONS_DIR
from privplate.store.models import Base


def assert_migration_matches_model(home: Path, *, before: str, table: str) -> None:
    with Deployment.open(home) as dep:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with dep.db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, before)
            assert table not in inspect(conn).get_table_names()
            command.upgrade(cfg, "head")
            conn.commit()
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    assert [d for d in diffs if table in repr(d)] == []
