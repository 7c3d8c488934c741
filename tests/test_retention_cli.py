"""The retention commands: purge, status, the scheduler and holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privplate.cli.main import app
from privplate.deployment import Deployment
from tests import factories

runner = CliRunner()


def test_purge_status_and_dry_run(home: Path) -> None:
    now = datetime.now(UTC)
    with Deployment.open(home) as dep:
        factories.camera(dep)
        factories.ingest(
            dep,
            [factories.read(dep, "ABC123", observed_at=now - timedelta(days=40))],
            now=now - timedelta(days=39),
        )
    d = ["--dir", str(home)]
    result = runner.invoke(app, ["status", "--json", *d])
    assert result.exit_code == 1, "a 40-day-old read breaks the 30-day promise"
    assert json.loads(result.output)["within_bound"] is False
    result = runner.invoke(app, ["purge", "--dry-run", *d])
    assert result.exit_code == 0 and "would delete 1 read rows" in result.output
    result = runner.invoke(app, ["purge", *d])
    assert result.exit_code == 0 and "deleted 1 read rows" in result.output
    result = runner.invoke(app, ["status", *d])
    assert result.exit_code == 0 and "non-hit reads  kept 30 days" in result.output
    assert "none stored" in result.output


def test_a_kept_hit_does_not_break_the_non_hit_promise(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New Hampshire keeps non-hits 3 minutes and hits 30 days: each has its own promise."""
    monkeypatch.setenv("PRIVPLATE_RETENTION__PRESET", "new-hampshire")
    now = datetime.now(UTC)
    with Deployment.open(home) as dep:
        factories.camera(dep)
        hit = factories.read(dep, "HIT123", observed_at=now - timedelta(hours=2))
        factories.ingest(dep, [hit], hits={hit.read_id}, now=now - timedelta(hours=2))
        fresh = factories.read(dep, "NEW123", observed_at=now - timedelta(seconds=30))
        factories.ingest(dep, [fresh], now=now - timedelta(seconds=29))
    result = runner.invoke(app, ["status", "--json", "--dir", str(home)])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    promises = {p["kind"]: p for p in status["promises"]}
    assert status["within_bound"] is True
    assert 25 < promises["non_hit_reads"]["oldest_non_held_age_seconds"] < 600
    assert promises["hit_reads"]["oldest_non_held_age_seconds"] > 7000
    assert promises["hit_reads"]["bound_seconds"] > 29 * 86_400
    assert promises["evidence"]["oldest_non_held_age_seconds"] is None
    # A non-hit that outlives its window (no purge ran) breaks the promise, and says which.
    with Deployment.open(home) as dep:
        stale = factories.read(dep, "OLD123", observed_at=now - timedelta(minutes=9))
        factories.ingest(dep, [stale], now=now - timedelta(minutes=8, seconds=59))
    result = runner.invoke(app, ["status", "--dir", str(home)])
    assert result.exit_code == 1
    assert "non-hit reads" in result.output and "EXCEEDED" in result.output


def test_hold_requester_cannot_approve_from_the_cli(home: Path) -> None:
    with Deployment.open(home) as dep:
        factories.camera(dep)
        read = factories.read(dep, "ABC123")
        factories.ingest(dep, [read])
    d = ["--dir", str(home)]
    result = runner.invoke(
        app,
        [
            "holds",
            "request",
            str(read.read_id),
            "--case",
            "C-1",
            "--why",
            "stolen vehicle recovered",
            *d,
        ],
    )
    assert result.exit_code == 0, result.output
    hold_id = result.output.split()[1]
    result = runner.invoke(app, ["holds", "approve", hold_id, *d])
    assert result.exit_code == 77 and "cannot approve" in result.output
    result = runner.invoke(app, ["holds", "request", "not-a-uuid", "--case", "C", "--why", "w", *d])
    assert result.exit_code == 78 and "not an id" in result.output
    result = runner.invoke(app, ["holds", "list", *d])
    assert "C-1" in result.output


def test_scheduler_purges_repeatedly_until_stopped(home: Path) -> None:
    exe = Path(sys.executable).parent / "privplate"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")}
    proc = subprocess.Popen(
        [str(exe), "retention", "run", "--interval", "1", "--dir", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        runs = 0
        while time.monotonic() < deadline and runs < 3:
            time.sleep(0.5)
            with Deployment.open(home) as dep:
                runs = len(list(dep.audit.entries(action="retention.purged")))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert runs >= 3, err.decode()
    assert proc.returncode == 0
