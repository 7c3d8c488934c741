"""The audit log on SQLite and PostgreSQL: tamper detection, checkpoints, atomicity, pruning."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from privplate.audit import AuditSigner, Checkpoint, verify_log
from privplate.audit.entries import Entry, encode_entry
from privplate.audit.log import AuditLog
from privplate.audit.merkle import leaf_hash, verify_inclusion
from privplate.cli.main import app
from privplate.deployment import Deployment
from privplate.errors import AlreadyExists, AuditError
from privplate.store import list_cameras
from tests import factories
from tests.privacy import dump_database, hits_in_bytes


def populate(dep: Deployment, n: int = 12) -> None:
    for i in range(n):
        dep.add_camera(f"cam-{i}", name=f"camera {i}")


def verify(dep: Deployment, witness: Checkpoint | None = None) -> list[str]:
    report = verify_log(dep.db, dep.audit.signer, witness=witness, stored=dep.audit.checkpoints())
    return report.problems


def sql(dep: Deployment, statement: str, **params: object) -> None:
    with dep.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_a_clean_log_verifies(dep: Deployment) -> None:
    populate(dep)
    dep.audit.checkpoint()
    dep.add_camera("late")
    assert verify(dep) == []
    # init recorded the configuration; then one entry per camera
    actions = [e.action for e in dep.audit.entries()]
    assert actions[0] == "config.changed" and actions.count("camera.added") == 13


def test_edited_entry_is_named(dep: Deployment) -> None:
    populate(dep)
    with dep.db.read() as conn:
        data = conn.execute(text("SELECT entry FROM audit_entries WHERE seq = 5")).scalar_one()
    forged = bytes(data).replace(b"camera 4", b"camera X")
    sql(dep, "UPDATE audit_entries SET entry = :e WHERE seq = 5", e=forged)
    assert verify(dep) == ["entry #5: content does not match its leaf hash (edited)"]


def test_edited_entry_with_recomputed_hash_is_named(dep: Deployment) -> None:
    populate(dep)
    with dep.db.read() as conn:
        data = conn.execute(text("SELECT entry FROM audit_entries WHERE seq = 5")).scalar_one()
    forged = bytes(data).replace(b"camera 4", b"camera X")
    sql(
        dep,
        "UPDATE audit_entries SET entry = :e, leaf_hash = :h WHERE seq = 5",
        e=forged,
        h=leaf_hash(forged),
    )
    assert verify(dep) == [
        "entry #5: leaf hash was rewritten (its MAC does not match the deployment key)"
    ]


def test_deleted_entry_is_named(dep: Deployment) -> None:
    populate(dep)
    sql(dep, "DELETE FROM audit_entries WHERE seq = 7")
    problems = verify(dep)
    assert problems and problems[0] == "entry #7 is missing (deleted or renumbered)"


def test_reordered_entries_are_named(dep: Deployment) -> None:
    populate(dep)
    sql(dep, "UPDATE audit_entries SET seq = -1 WHERE seq = 3")
    sql(dep, "UPDATE audit_entries SET seq = 3 WHERE seq = 8")
    sql(dep, "UPDATE audit_entries SET seq = 8 WHERE seq = -1")
    problems = verify(dep)
    assert problems and problems[0].startswith("entry #3:")


def test_inserted_entry_is_named(dep: Deployment) -> None:
    populate(dep)
    # Make room at seq 4 by shifting the tail up, then insert a well-formed forged entry.
    sql(dep, "UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 4")
    sql(dep, "UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000")
    forged = encode_entry(Entry(4, datetime.now(UTC), "cli:mallory", "camera.added", {}))
    sql(
        dep,
        "INSERT INTO audit_entries (seq, created_at, actor, action, entry, leaf_hash, mac) "
        "VALUES (4, :t, 'cli:mallory', 'camera.added', :e, :h, :m)",
        t=datetime.now(UTC).replace(tzinfo=None) if dep.db.is_sqlite else datetime.now(UTC),
        e=forged,
        h=leaf_hash(forged),
        m=b"\x00" * 32,
    )
    problems = verify(dep)
    assert problems and problems[0].startswith("entry #4:")


def test_truncation_after_a_checkpoint_fails(dep: Deployment) -> None:
    populate(dep)
    witness = dep.audit.checkpoint()
    sql(dep, "DELETE FROM audit_entries WHERE seq >= 10")
    problems = verify(dep, witness)
    assert any("log truncated" in p for p in problems)


def test_rewrite_with_the_key_after_a_checkpoint_fails(dep: Deployment) -> None:
    """Even someone holding the signing key cannot rewrite history a witness has seen."""
    populate(dep)
    witness = dep.audit.checkpoint()
    sql(dep, "DELETE FROM audit_checkpoints")
    with dep.db.read() as conn:
        data = conn.execute(text("SELECT entry FROM audit_entries WHERE seq = 2")).scalar_one()
    forged = bytes(data).replace(b"camera 1", b"camera Z")
    leaf = leaf_hash(forged)
    sql(
        dep,
        "UPDATE audit_entries SET entry = :e, leaf_hash = :h, mac = :m WHERE seq = 2",
        e=forged,
        h=leaf,
        m=dep.audit.signer.entry_mac(2, leaf),
    )
    assert verify(dep) == []  # internally consistent again...
    problems = verify(dep, witness)  # ...but not with what the witness holds
    assert problems == [
        "log rewritten after the witness checkpoint: entries #0 to #12 no longer match it"
    ]


def test_stored_checkpoints_pin_history(dep: Deployment) -> None:
    populate(dep, 4)
    dep.audit.checkpoint()
    for cid in ("x1", "x2"):
        dep.add_camera(cid)
    with dep.db.read() as conn:
        data = conn.execute(text("SELECT entry FROM audit_entries WHERE seq = 1")).scalar_one()
    forged = bytes(data).replace(b"camera 0", b"camera Q")
    leaf = leaf_hash(forged)
    sql(
        dep,
        "UPDATE audit_entries SET entry = :e, leaf_hash = :h, mac = :m WHERE seq = 1",
        e=forged,
        h=leaf,
        m=dep.audit.signer.entry_mac(1, leaf),
    )
    signed_at = dep.audit.checkpoints()[0].time
    assert signed_at is not None  # stored checkpoints keep their time
    assert verify(dep) == [
        f"log rewritten between entry #0 and #4: it no longer matches the checkpoint signed "
        f"{signed_at.isoformat()}"
    ]


def test_foreign_or_forged_checkpoints_are_refused(dep: Deployment) -> None:
    populate(dep, 3)
    good = dep.audit.checkpoint()
    other = AuditSigner.generate()
    foreign = AuditLog(dep.db, other).checkpoint()
    assert any("different key" in p for p in verify(dep, foreign))
    data = json.loads(good.to_json())
    data["tree_size"] = 2
    assert any(
        "invalid signature" in p for p in verify(dep, Checkpoint.from_json(json.dumps(data)))
    )
    for bad in (
        "{}",
        "[]",
        '{"format": "privplate-audit-checkpoint", "version": 1, "tree_size": 6.9}',
    ):
        with pytest.raises(AuditError, match="malformed"):
            Checkpoint.from_json(bad)


def test_inclusion_proofs_verify_against_a_signed_root(dep: Deployment) -> None:
    populate(dep, 20)
    signed = dep.audit.checkpoint()
    signed.verify_signature(dep.audit.signer.public_key)
    for seq in range(signed.tree_size):
        proof = dep.audit.inclusion_proof(seq, signed.tree_size)
        verify_inclusion(dep.audit.leaf(seq), seq, signed.tree_size, proof, signed.root)
    dep.add_camera("after")
    verify_inclusion(
        dep.audit.leaf(3),
        3,
        signed.tree_size,
        dep.audit.inclusion_proof(3, signed.tree_size),
        signed.root,
    )


# -- atomicity: an action whose audit append fails does not happen --------------------------


def test_failed_audit_append_cancels_camera_registration(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise AuditError("audit storage unavailable")

    monkeypatch.setattr(dep.audit, "append", broken)
    with pytest.raises(AuditError):
        dep.add_camera("ghost")
    monkeypatch.undo()
    assert [c.id for c in list_cameras(db=dep.db)] == []
    dep.add_camera("ghost")  # the same action succeeds once auditing works
    with pytest.raises(AlreadyExists):
        dep.add_camera("ghost")


def test_failed_audit_append_cancels_key_destruction(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    old = dep.keyring.current_key(now - timedelta(days=5))

    def broken(*args: object, **kwargs: object) -> None:
        raise AuditError("audit storage unavailable")

    monkeypatch.setattr(dep.audit, "append", broken)
    with pytest.raises(AuditError):
        dep.keyring.destroy_before(now - timedelta(days=2))
    monkeypatch.undo()
    assert dep.keyring.key_for(old.epoch_id).key == old.key  # still there
    assert dep.keyring.destroy_before(now - timedelta(days=2)) == [old.epoch_id]
    [entry] = [e for e in dep.audit.entries(action="keys.")]
    assert entry.entry is not None and entry.entry.details["epochs"] == [old.epoch_id]


# -- content rules -------------------------------------------------------------------------


def test_no_plate_text_in_any_entry(dep: Deployment) -> None:
    plates = ["7ABC123", "XYZ9876", "HB4711"]
    factories.camera(dep)
    factories.ingest(dep, [factories.read(dep, p) for p in plates])
    for p in plates:
        factories.lookup(dep, p, datetime.now(UTC) - timedelta(days=1))
    dep.keyring.current_key(datetime.now(UTC) - timedelta(days=9))
    dep.keyring.destroy_before(datetime.now(UTC) - timedelta(days=3))
    dep.audit.checkpoint()
    with dep.db.read() as conn:
        rows = conn.execute(text("SELECT actor, action, entry FROM audit_entries")).all()
    blob = b"".join(r.actor.encode() + r.action.encode() + bytes(r.entry) for r in rows)
    assert len(rows) >= 3
    assert hits_in_bytes(blob, plates) == []
    assert hits_in_bytes(dump_database(dep.settings.resolved_database_url), plates) == []


def test_floats_and_odd_values_are_refused(dep: Deployment) -> None:
    with pytest.raises(AuditError, match="floats"):
        dep.audit.record(actor="t", action="x", details={"ratio": 0.5})
    with pytest.raises(AuditError, match="action"):
        dep.audit.record(actor="t", action="Has Spaces")


def test_configuration_changes_are_recorded_once(home: Path) -> None:
    with Deployment.open(home) as dep:
        first = len(list(dep.audit.entries(action="config.changed")))
    with Deployment.open(home) as dep:
        assert len(list(dep.audit.entries(action="config.changed"))) == first
    config = home / "privplate.toml"
    config.write_text(
        config.read_text().replace('preset = "vendor-default-30d"', 'preset = "maine"')
    )
    with Deployment.open(home) as dep:
        changes = list(dep.audit.entries(action="config.changed"))
        assert len(changes) == first + 1
        assert changes[-1].entry is not None
        assert changes[-1].entry.details["settings"]["retention"]["preset"] == "maine"


# -- pruning ---------------------------------------------------------------------------------


def test_pruning_a_prefix_keeps_everything_verifiable(dep: Deployment) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=1000)
    sql(dep, "DELETE FROM audit_entries")  # start the log in the distant past
    for i in range(6):
        with dep.db.write() as conn:
            dep.audit.append(
                conn,
                actor="cli:old",
                action="camera.added",
                details={"i": i},
                now=long_ago + timedelta(minutes=i),
            )
    populate(dep, 3)
    witness = dep.audit.checkpoint()
    window = dep.settings.retention_window("audit_entries")
    with pytest.raises(AuditError, match="retention window"):
        dep.audit.prune_before(
            datetime.now(UTC),
            actor="cli:t",
            policy="test",
            oldest_allowed=datetime.now(UTC) - window,
        )
    pruned = dep.audit.prune_before(
        datetime.now(UTC) - window,
        actor="cli:t",
        policy="audit_entries window",
        oldest_allowed=datetime.now(UTC) - window,
    )
    assert pruned == 6
    report = verify_log(dep.db, dep.audit.signer, witness=witness, stored=dep.audit.checkpoints())
    assert report.problems == [] and report.pruned == 6 and report.witness_checked
    shown = list(dep.audit.entries())
    assert [s.entry is None for s in shown[:6]] == [True] * 6
    assert shown[-1].action == "audit.pruned"
    # Erasing content outside the prefix is tampering.
    sql(dep, "UPDATE audit_entries SET entry = NULL WHERE seq = 8")
    assert verify(dep) == ["entry #8: content erased outside the pruned prefix"]


def test_erasing_a_prefix_without_a_recorded_prune_is_detected(dep: Deployment) -> None:
    populate(dep, 5)
    sql(dep, "UPDATE audit_entries SET entry = NULL WHERE seq <= 3")
    assert verify(dep) == [
        "entries #0 to #3 have no content, but no audit.pruned entry covers them beyond #-1 "
        "(erased without a recorded policy)"
    ]


# -- CLI -------------------------------------------------------------------------------------


def test_cli_verify_checkpoint_and_show(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    d = ["--dir", str(home)]
    assert runner.invoke(app, ["cameras", "add", "gate-1", *d]).exit_code == 0
    cp = tmp_path / "witness.json"
    result = runner.invoke(app, ["audit", "checkpoint", "--out", str(cp), *d])
    assert result.exit_code == 0 and cp.exists()
    assert runner.invoke(app, ["cameras", "add", "gate-2", *d]).exit_code == 0
    result = runner.invoke(app, ["audit", "verify", "--checkpoint", str(cp), *d])
    assert result.exit_code == 0, result.output
    assert "extends the witness checkpoint" in result.output
    result = runner.invoke(app, ["audit", "show", "--action", "camera", "--json", *d])
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["details"]["camera"] for line in lines] == ["gate-1", "gate-2"]
    result = runner.invoke(app, ["audit", "prune", *d])
    assert result.exit_code == 0 and "0 entries older than" in result.output
    with Deployment.open(home) as dep:
        assert [e.action for e in dep.audit.entries()][-1] == "audit.pruned"
        sql(dep, "DELETE FROM audit_entries WHERE seq = 1")
    result = runner.invoke(app, ["audit", "verify", "--checkpoint", str(cp), *d])
    assert result.exit_code == 1
    assert "entry #1 is missing" in result.output + result.stderr
