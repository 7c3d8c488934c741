"""`/healthz` and `/readyz` of a real `privplate serve`: a server whose database schema is behind
its version (the city's rollout: new pods start before the migration job has run) is alive but
not ready, refuses work with 503, and turns ready by itself once `privplate migrate` has run."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from alembic import command

from privplate.settings import load_settings
from privplate.store.database import Database
from tests.cluster_support import PRIVPLATE, servers


def _downgrade(home: Path, revision: str) -> None:
    db = Database(load_settings(home).resolved_database_url)
    try:
        with db.engine.connect() as conn:
            command.downgrade(db._alembic_config(conn), revision)
            conn.commit()
    finally:
        db.dispose()


def test_ready_when_current(home: Path) -> None:
    with servers(home, 1, {}) as (url,):
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 200
        assert ready.json() | {"version": None} == {
            "ready": True,
            "version": None,
            "database": True,
            "migrations": True,
            "keys": True,
            "reason": None,
        }


def test_unready_while_migrations_are_behind_then_ready_after_migrate(home: Path) -> None:
    _downgrade(home, "-1")
    with servers(home, 1, {}, wait_path="/healthz") as (url,):
        alive = httpx.get(f"{url}/healthz")
        assert alive.status_code == 200
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False
        assert "expected" in body["reason"]
        # Work is refused with the same reason, never answered from a half-open deployment.
        refused = httpx.get(f"{url}/alerts", headers={"Authorization": "Bearer ppk_x"})
        assert refused.status_code == 503
        assert refused.json()["error"]["type"] == "not_ready"
        assert "expected" in refused.json()["error"]["message"]
        assert refused.headers["Retry-After"] == "2"

        done = subprocess.run(
            [PRIVPLATE, "migrate", "--dir", str(home)], capture_output=True, text=True, check=True
        )
        assert "migrated from" in done.stdout
        for _ in range(100):
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the server did not turn ready after the migration")
        assert httpx.get(f"{url}/readyz").json()["migrations"] is True


def test_migrate_when_current_changes_nothing(home: Path) -> None:
    done = subprocess.run(
        [PRIVPLATE, "migrate", "--dir", str(home)], capture_output=True, text=True, check=True
    )
    assert "already at" in done.stdout


def test_several_workers_refused_on_sqlite(home: Path) -> None:
    if load_settings(home).resolved_database_url.startswith("postgresql"):
        pytest.skip("several workers are for PostgreSQL (tests/test_load.py runs them)")
    run = subprocess.run(
        [PRIVPLATE, "serve", "--dir", str(home), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert "PostgreSQL" in run.stdout + run.stderr
