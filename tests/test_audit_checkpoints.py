"""Signed checkpoints without a terminal: the server's job signs one when the audit log has
grown, by the same rule as `privplate audit checkpoint`; one per tree size however many
processes sign at once; audit.checkpoint_interval_minutes = 0 turns the job off. On SQLite and
PostgreSQL (PRIVPLATE_TEST_DATABASE_URL)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from privplate.api.app import _checkpoint_job, create_app
from privplate.audit import Checkpoint, read_checkpoint, verify_log
from privplate.audit.log import _CHECKPOINT_LOCK, AuditLog
from privplate.cli.main import app as cli
from privplate.deployment import Deployment
from privplate.errors import AuditError, ConfigError
from privplate.settings import load_settings
from privplate.store.models import AuditCheckpoint
from tests.conftest import ON_POSTGRES

INTERVAL = "PRIVPLATE_AUDIT__CHECKPOINT_INTERVAL_MINUTES"


def _stored(dep: Deployment) -> list[int]:
    """The tree sizes of the stored checkpoints, in the order they were stored."""
    return [c.tree_size for c in dep.audit.checkpoints()]


def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for something another thread does; fail (never pass) if it does not happen."""
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.02)


def test_the_job_signs_when_the_log_has_grown_and_not_otherwise(dep: Deployment) -> None:
    assert dep.audit.size() > 0 and _stored(dep) == []  # init recorded its configuration
    first = _checkpoint_job(dep.audit, first_only=True)  # the server's start: none yet
    assert first is not None and first.tree_size == dep.audit.size()
    first.verify_signature(dep.audit.signer.public_key)
    assert _checkpoint_job(dep.audit, first_only=True) is None  # one exists now
    assert _checkpoint_job(dep.audit) is None  # nothing new since
    assert _stored(dep) == [first.tree_size]

    dep.add_camera("gate-1")
    dep.add_camera("gate-2")
    assert _checkpoint_job(dep.audit, first_only=True) is None  # only ever the first one
    grown = _checkpoint_job(dep.audit)
    assert grown is not None and grown.tree_size == first.tree_size + 2 == dep.audit.size()
    assert grown.root == dep.audit.tree().root() != first.root
    assert _checkpoint_job(dep.audit) is None
    assert _stored(dep) == [first.tree_size, grown.tree_size]
    # What the job stored is what the checkpoint page, the API and witnesses are given.
    assert dep.audit.checkpoints()[-1] == grown
    assert dep.audit.checkpoint() == grown  # the same rule: no second one of this size
    report = verify_log(dep.db, dep.audit.signer, witness=first, stored=dep.audit.checkpoints())
    assert report.ok and report.checkpoints_checked == 2


def test_the_cli_signs_by_the_same_rule(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    d = ["--dir", str(home)]
    with Deployment.open(home) as dep:
        signed = _checkpoint_job(dep.audit)
        assert signed is not None
    out = tmp_path / "witness.json"
    result = runner.invoke(cli, ["audit", "checkpoint", "--out", str(out), *d])
    assert result.exit_code == 0, result.output
    assert "nothing new to sign" in result.output
    # The job's, handed to a witness as the signed note (which carries no time).
    assert out.read_text(encoding="utf-8") == signed.to_note()
    assert read_checkpoint(out.read_text(), signed.public_key) == replace(signed, time=None)
    assert runner.invoke(cli, ["cameras", "add", "gate-9", *d]).exit_code == 0
    result = runner.invoke(cli, ["audit", "checkpoint", *d])
    assert result.exit_code == 0 and f"checkpoint of {signed.tree_size + 1} entries signed" in (
        result.output
    )
    with Deployment.open(home) as dep:
        assert _stored(dep) == [signed.tree_size, signed.tree_size + 1]
        assert _checkpoint_job(dep.audit) is None  # the CLI's covers the log: the job skips


def test_an_empty_log_is_not_signed(dep: Deployment) -> None:
    with dep.db.write() as conn:
        conn.execute(text("DELETE FROM audit_entries"))
    fresh = AuditLog(dep.db, dep.audit.signer)  # no tree cached from before the delete
    assert _checkpoint_job(fresh) is None and _checkpoint_job(fresh, first_only=True) is None
    with pytest.raises(AuditError, match="nothing to sign"):
        fresh.checkpoint()
    assert _stored(dep) == []


def test_two_signers_at_once_store_one_checkpoint(home: Path) -> None:
    """Two server processes' jobs, each with its own engine and tree cache, firing together."""
    with Deployment.open(home) as a, Deployment.open(home) as b:
        a.add_camera("gate-1")
        results: list[Checkpoint | None] = []
        start = threading.Barrier(2)

        def sign(dep: Deployment) -> None:
            start.wait()
            results.append(_checkpoint_job(dep.audit))

        signers = [threading.Thread(target=sign, args=(d,)) for d in (a, b)]
        if ON_POSTGRES:
            # Deterministic: hold the signers' lock until both are queued behind it, having
            # both read the same tree and found no checkpoint of it; then let them go.
            with a.db.write() as conn:
                a.db.lock_subject(conn, _CHECKPOINT_LOCK)
                for t in signers:
                    t.start()
                _until(lambda: _advisory_waiters(a) == 2, "both signers queued on the lock")
        else:
            # SQLite: each signer's check and insert run in one BEGIN IMMEDIATE transaction,
            # which the database's write lock serializes across processes.
            for t in signers:
                t.start()
        for t in signers:
            t.join(timeout=120)
        signed = [r for r in results if r is not None]
        assert len(results) == 2 and len(signed) == 1, results
        assert signed[0].tree_size == a.audit.size()
        with a.db.read() as conn:
            same_size = conn.execute(
                select(func.count())
                .select_from(AuditCheckpoint)
                .where(AuditCheckpoint.tree_size == signed[0].tree_size)
            ).scalar_one()
        assert same_size == 1 and _stored(a) == [signed[0].tree_size]


def _advisory_waiters(dep: Deployment) -> int:
    """PostgreSQL: sessions waiting for the checkpoint signers' advisory lock, found by its
    key as Database.lock_subject derives it (other tests on the server take other locks)."""
    key = int.from_bytes(
        hashlib.blake2b(
            _CHECKPOINT_LOCK.encode(), digest_size=8, person=b"privplate-lock"
        ).digest(),
        "big",
    )
    with dep.db.read() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND classid::bigint = :high AND objid::bigint = :low AND objsubid = 1 "
                    "AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"
                ),
                {"high": key >> 32, "low": key & 0xFFFFFFFF},
            ).scalar_one()
        )


def test_the_interval_setting(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(home).audit.checkpoint_interval_minutes == 60
    monkeypatch.setenv(INTERVAL, "-1")
    with pytest.raises(ConfigError, match="checkpoint_interval_minutes"):
        load_settings(home)
    monkeypatch.setenv(INTERVAL, "0")
    assert load_settings(home).audit.checkpoint_interval_minutes == 0


def _jobs(app: Any) -> dict[str, Any]:
    scheduler = app.state.scheduler
    return {} if scheduler is None else {job.id: job.trigger for job in scheduler.get_jobs()}


def test_the_server_signs_at_start_and_on_its_interval(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INTERVAL, "15")
    app = create_app(home)
    with TestClient(app), Deployment.open(home) as dep:
        jobs = _jobs(app)
        assert {"audit-checkpoint", "retention-purge"} <= set(jobs)
        assert jobs["audit-checkpoint"].interval.total_seconds() == 15 * 60
        # The one-off start job, in the scheduler's thread: a first checkpoint, unasked.
        _until(lambda: _stored(dep) != [], "the checkpoint signed at start")
        # One, of the log as it was then (the purge, run at once on taking the lead, may
        # have appended its entry since).
        (signed,) = _stored(dep)
        assert 1 <= signed <= dep.audit.size()


def test_the_setting_0_turns_the_job_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INTERVAL, "0")
    app = create_app(home)
    with TestClient(app):
        # The purge and the device health check still run (with the tick that takes the
        # lead for them); no signer.
        assert set(_jobs(app)) == {"retention-purge", "device-health", "leader-tick", "key-refresh"}
    monkeypatch.setenv("PRIVPLATE_SERVER__RUN_PURGE_SCHEDULER", "false")
    monkeypatch.setenv("PRIVPLATE_HEALTH__ENABLED", "false")
    quiet = create_app(home)
    with TestClient(quiet):
        assert set(_jobs(quiet)) == {"key-refresh"}  # keys kept current; nothing to lead
    monkeypatch.setenv(INTERVAL, "60")
    with TestClient(create_app(home, run_scheduler=False)) as client:
        assert client.app.state.scheduler is None  # type: ignore[attr-defined]
    with Deployment.open(home) as dep:
        assert _stored(dep) == []  # no server above signed anything
