"""Two hosts (tests/hosts.py): a real `privplate serve` in one network namespace, the witness in
another, joined by a veth pair to the server host's bridge (nothing but that link between
them). The witness cosigns twice as the log grows; then an insider holding the audit key
replaces the history with a longer one, signs it and restarts the server, and the witness
refuses, exits non-zero and names the sizes, once and in --interval mode.

Needs root and `ip netns` (iproute2); skipped without them, except under CI, which runs as
root and must run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from privplate.audit.witness import create_witness_key
from privplate.deployment import Deployment
from privplate.store.models import AuditCheckpoint, AuditEntry
from tests import hosts
from tests.hosts import PRIVPLATE, Server

hosts.require("the two-host witness test")


@pytest.fixture
def bed() -> Iterator[hosts.Bed]:
    with hosts.bed("witness") as made:
        yield made


def _configure(home: Path, vkey: str) -> None:
    config = home / "privplate.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f"\n[audit]\ncheckpoint_interval_minutes = 0\nwitnesses = {json.dumps([vkey])}\n"
        + "\n[server]\nrun_purge_scheduler = false\n",
        encoding="utf-8",
    )


def _grow(home: Path, entries: int, action: str = "test.grow") -> int:
    with Deployment.open(home, actor="test") as dep:
        for i in range(entries):
            dep.audit.record(actor="test", action=action, details={"i": i})
        signed = dep.audit.sign_if_grown()
        assert signed is not None
        return signed.tree_size


def _rewrite(home: Path, longer_than: int) -> int:
    """History after entry #0 replaced by a longer one, MACed and signed with the same key."""
    with Deployment.open(home) as dep, dep.db.write() as conn:
        conn.execute(delete(AuditEntry).where(AuditEntry.seq >= 1))
        conn.execute(delete(AuditCheckpoint))
    rewritten = _grow(home, longer_than + 4, action="test.rewritten")
    assert rewritten > longer_than
    return rewritten


def _watch_until_refused(argv: list[str], folder: Path) -> tuple[int, str]:
    """Run the witness in --interval mode until it reports a refusal, then stop it (SIGTERM):
    its exit code and what it wrote to stderr (white space collapsed)."""
    out, err = folder / "watch.out", folder / "watch.err"
    with out.open("wb") as o, err.open("wb") as e:
        watcher = subprocess.Popen(argv, stdout=o, stderr=e, env={**os.environ, "COLUMNS": "400"})
    try:
        for _ in range(300):
            if "REFUSED" in err.read_text() or watcher.poll() is not None:
                break
            time.sleep(0.1)
        assert "REFUSED" in err.read_text(), err.read_text()
    finally:
        watcher.send_signal(signal.SIGTERM)
        code = watcher.wait(timeout=30)
    return code, " ".join(err.read_text().split())


def test_a_witness_on_another_host_catches_a_rewritten_log(
    bed: hosts.Bed, home: Path, database_url: str, tmp_path: Path
) -> None:
    key = tmp_path / "witness" / "witness.key"
    state = tmp_path / "witness" / "state.json"
    cosigner = create_witness_key(key, "clerk.springfield.example/witness")
    _configure(home, cosigner.vkey())
    with Deployment.open(home) as dep:
        log_key = dep.audit.signer.note_verifier.vkey()
    first = _grow(home, 2)
    env = hosts.database_env(database_url)
    server = Server(bed, home, env, tmp_path / "server.log")

    def witness(*extra: str) -> list[str]:
        return bed.hosts["witness"].argv(
            PRIVPLATE,
            "audit",
            "witness",
            "--server",
            server.url,
            "--log-key",
            log_key,
            "--key",
            str(key),
            "--state",
            str(state),
            *extra,
        )

    def once() -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")}
        return subprocess.run(
            witness("--once"),
            capture_output=True,
            text=True,
            env={**env, "COLUMNS": "400"},
            check=False,
            timeout=60,
        )

    try:
        server.start()
        done = once()
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"first checkpoint seen: {first} entries" in done.stdout
        second = _grow(home, 3)
        done = once()
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"log grew from {first} to {second} entries (consistency proof verified)" in (
            done.stdout
        )

        listed = subprocess.run(
            [PRIVPLATE, "audit", "verify", "--dir", str(home)],
            capture_output=True,
            text=True,
            env={**env, "COLUMNS": "400"},
            check=False,
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert (
            "witness clerk.springfield.example/witness (configured): cosigned 2 sizes "
            f"({first}, {second})"
        ) in listed.stdout

        # The insider: stop the server, replace everything after entry #0 with a longer,
        # different history, signed with the same key (MACs and checkpoint), restart.
        server.stop()
        rewritten = _rewrite(home, longer_than=second)
        server.start()

        seen_before = state.read_bytes()
        done = once()
        assert done.returncode == 3, done.stdout + done.stderr
        said = " ".join((done.stdout + done.stderr).split())
        assert f"accepted {second} entries" in said, said
        assert f"now shows {rewritten} entries" in said, said
        assert "not cosigned" in said
        assert state.read_bytes() == seen_before

        # Watching (--interval): it keeps refusing, and says so at the end with its exit code.
        code, said = _watch_until_refused(witness("--interval", "1"), tmp_path)
        assert code == 3, said
        assert f"now shows {rewritten} entries" in said
    finally:
        server.stop()
