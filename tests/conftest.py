"""Shared fixtures: a fresh deployment per test on SQLite, or PostgreSQL when
PRIVPLATE_TEST_DATABASE_URL is set (each test then gets its own schema)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from privplate.deployment import Deployment, init_deployment

PG_URL = os.environ.get("PRIVPLATE_TEST_DATABASE_URL", "")

# The README runs the suite as `PRIVPLATE_MODELS_DIR=../shared/models pytest`: a relative folder
# meant from where pytest starts. Tests build settings for deployments elsewhere (tmp folders),
# where it would resolve to nothing, so pin it to an absolute path once, here.
if os.environ.get("PRIVPLATE_MODELS_DIR"):
    os.environ["PRIVPLATE_MODELS_DIR"] = str(Path(os.environ["PRIVPLATE_MODELS_DIR"]).resolve())
ON_POSTGRES = PG_URL.startswith("postgresql")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own PRIVPLATE_* settings must not leak into tests.
    for name in list(os.environ):
        if name.startswith("PRIVPLATE_") and name not in (
            "PRIVPLATE_TEST_DATABASE_URL",
            "PRIVPLATE_MODELS_DIR",
        ):
            monkeypatch.delenv(name)


def database_in(folder: Path, prefix: str = "t") -> Iterator[str]:
    """A fresh database: a SQLite file in ``folder``, or on PostgreSQL a schema of its own,
    dropped when the generator runs on past its yield (as a fixture does)."""
    if not ON_POSTGRES:
        yield f"sqlite:///{folder / 'privplate.db'}"
        return
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    yield from database_in(tmp_path)


@pytest.fixture
def home(tmp_path: Path, database_url: str) -> Path:
    root = tmp_path / "deployment"
    init_deployment(root, database_url=database_url)
    return root


@pytest.fixture
def dep(home: Path) -> Iterator[Deployment]:
    with Deployment.open(home) as opened:
        yield opened


def vectors(name: str) -> dict[str, object]:
    import json

    path = Path(__file__).resolve().parent.parent / "crypto" / "vectors" / f"{name}.json"
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[object]:
    """The one Playwright of the run: its sync API drives an event loop of its own, so a
    second one alive at the same time (the browser suite's and the crypto tests') fails."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        yield pw


@pytest.fixture
def api(home: Path) -> Iterator[object]:
    from tests.api_support import open_api

    yield from open_api(home)
