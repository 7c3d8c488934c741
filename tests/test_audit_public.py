"""Checkpoints as C2SP signed notes in a deployment: the migration that keeps the old ones,
the public /.well-known/privplate/ endpoints witnesses read, and the CLI that writes and reads
the same notes. On SQLite and PostgreSQL (PRIVPLATE_TEST_DATABASE_URL)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from privplate.audit import AuditSigner, public_note, read_checkpoint, verify_log
from privplate.audit.log import AuditLog
from privplate.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from privplate.audit.note import NoteVerifier
from privplate.audit.signing import FORMAT_NOTE, FORMAT_V1, Checkpoint, sign_checkpoint
from privplate.cli.main import app as cli
from privplate.deployment import Deployment
from privplate.errors import NotFound
from privplate.store.models import AuditCheckpoint, AuditEntry
from tests.api_support import Api

BASE = "/.well-known/privplate"


def _hashes(text: str) -> list[bytes]:
    return [base64.b64decode(line, validate=True) for line in text.splitlines()]


def _grow(dep: Deployment, n: int, prefix: str = "cam") -> None:
    for i in range(n):
        dep.add_camera(f"{prefix}-{i}")


# -- the migration ---------------------------------------------------------------------------


def test_the_migration_keeps_old_checkpoints_verifying(home: Path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext

    from privplate.store.database import MIGRATIONS_DIR
    from privplate.store.models import Base
    from privplate.store.types import UTCDateTime

    with Deployment.open(home) as dep:
        tree = dep.audit.tree()
        moment = datetime(2026, 11, 30, 8, 0, 0, 250000, tzinfo=UTC)
        old = sign_checkpoint(dep.audit.signer, tree.size, tree.root(), moment, fmt=FORMAT_V1)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with dep.db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0013_search_approvals")
            before = sa.table(  # the table as the code before notes stored checkpoints
                "audit_checkpoints",
                sa.column("tree_size", sa.BigInteger()),
                sa.column("root", sa.LargeBinary()),
                sa.column("created_at", UTCDateTime()),
                sa.column("public_key", sa.LargeBinary()),
                sa.column("signature", sa.LargeBinary()),
            )
            conn.execute(
                sa.insert(before).values(
                    tree_size=old.tree_size,
                    root=old.root,
                    created_at=moment,
                    public_key=old.public_key,
                    signature=old.signature,
                )
            )
            command.upgrade(cfg, "head")
            conn.commit()
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
            assert [d for d in diffs if "audit_checkpoints" in repr(d)] == []
        audit = AuditLog(dep.db, dep.audit.signer)
        assert audit.checkpoints() == [old] and old.format == FORMAT_V1
        report = verify_log(dep.db, audit.signer, stored=audit.checkpoints())
        assert report.ok and report.checkpoints_checked == 1
        with pytest.raises(NotFound, match="no checkpoint has been signed"):
            public_note(audit)  # a v1 body is no note
        # The first signer after the upgrade signs a note, even of the same size.
        note = audit.sign_if_grown(first_only=True)
        assert note is not None and note.format == FORMAT_NOTE
        assert note.tree_size == old.tree_size and note.root == old.root
        assert audit.sign_if_grown() is None
        assert public_note(audit) == note.to_note()
        assert audit.latest_own_checkpoint() == note
        report = verify_log(dep.db, audit.signer, stored=audit.checkpoints())
        assert report.ok and report.checkpoints_checked == 2
        with dep.db.read() as conn:
            formats = conn.execute(
                sa.select(AuditCheckpoint.format).order_by(AuditCheckpoint.id)
            ).scalars()
            assert list(formats) == [FORMAT_V1, FORMAT_NOTE]


def test_a_forged_note_row_is_reported(dep: Deployment) -> None:
    signed = dep.audit.checkpoint()
    with dep.db.write() as conn:
        conn.execute(sa.update(AuditCheckpoint).values(format=FORMAT_V1))  # claims the old body
    report = verify_log(dep.db, dep.audit.signer, stored=dep.audit.checkpoints())
    assert report.problems == [
        f"stored checkpoint for tree size {signed.tree_size} has an invalid signature"
    ]


# -- the public endpoints --------------------------------------------------------------------


def test_the_checkpoint_and_key_are_public_text(api: Api) -> None:
    assert api.client.get(f"{BASE}/checkpoint").status_code == 404  # nothing signed yet
    signed = api.dep.audit.checkpoint()
    answer = api.client.get(f"{BASE}/checkpoint")  # no sign-in
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["cache-control"] == "public, max-age=60"
    assert answer.text == signed.to_note() == public_note(api.dep.audit)
    key = api.client.get(f"{BASE}/audit-key")
    assert key.status_code == 200 and key.headers["content-type"] == "text/plain; charset=utf-8"
    assert key.text == api.dep.audit.signer.note_verifier.vkey() + "\n"
    opened = Checkpoint.from_note(answer.text, NoteVerifier.parse(key.text))
    assert opened == replace(signed, time=None)
    # No entry content travels: the origin, the size, the root and the signature.
    assert answer.text.count("\n") == 5 and "camera" not in answer.text


def test_proofs_between_signed_sizes(api: Api) -> None:
    audit = api.dep.audit
    first = audit.checkpoint()
    _grow(api.dep, 5)
    second = audit.checkpoint()
    _grow(api.dep, 2, "unsigned")  # past the latest checkpoint
    answer = api.client.get(f"{BASE}/consistency?old={first.tree_size}&new={second.tree_size}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["cache-control"] == "public, max-age=86400, immutable"
    proof = _hashes(answer.text)
    assert proof and answer.text.endswith("\n")
    verify_consistency(first.tree_size, second.tree_size, first.root, second.root, proof)
    # Any older size works (a witness may hold an older checkpoint from elsewhere).
    for old in range(1, second.tree_size + 1):
        got = api.client.get(f"{BASE}/consistency?old={old}&new={second.tree_size}")
        tree = audit.tree()
        verify_consistency(old, second.tree_size, tree.root(old), second.root, _hashes(got.text))
    same = api.client.get(f"{BASE}/consistency?old={second.tree_size}&new={second.tree_size}")
    assert same.status_code == 200 and same.text == ""

    with api.dep.db.read() as conn:
        entries = dict(conn.execute(sa.select(AuditEntry.seq, AuditEntry.entry)).all())
    for index in range(second.tree_size):
        got = api.client.get(f"{BASE}/inclusion?index={index}&size={second.tree_size}")
        assert got.status_code == 200
        content = entries[index]
        assert content is not None
        leaf = leaf_hash(bytes(content))
        verify_inclusion(leaf, index, second.tree_size, _hashes(got.text), second.root)


def test_proof_requests_are_bounded(api: Api) -> None:
    audit = api.dep.audit
    first = audit.checkpoint()
    _grow(api.dep, 3)
    second = audit.checkpoint()
    _grow(api.dep, 3, "later")  # entries nobody signed yet
    current = audit.size()
    assert current > second.tree_size

    def status(query: str) -> tuple[int, str]:
        answer = api.client.get(f"{BASE}/{query}")
        return answer.status_code, answer.json()["error"]["message"]

    # Sizes that no checkpoint signed, inside or beyond the log, answer alike: the answer
    # does not tell the log's current size.
    unsigned = [first.tree_size + 1, current, current + 1, 10**12]
    for size in unsigned:
        assert status(f"consistency?old=1&new={size}") == (
            400,
            f"new {size} is not the size of a signed checkpoint",
        )
        assert status(f"inclusion?index=0&size={size}") == (
            400,
            f"size {size} is not the size of a signed checkpoint",
        )
    assert status(f"consistency?old={second.tree_size}&new={first.tree_size}")[0] == 400
    assert status(f"inclusion?index={second.tree_size}&size={second.tree_size}")[0] == 400
    # Not numbers, or out of range: the app's malformed-request answer.
    for query in (
        "consistency?old=0&new=1",
        "consistency?old=-1&new=1",
        "consistency?old=x&new=1",
        "consistency?new=1",
        "consistency?old=1&new=9223372036854775808",
        "inclusion?index=-1&size=1",
        "inclusion?index=0&size=0",
        "inclusion?index=0&size=1e3",
    ):
        answer = api.client.get(f"{BASE}/{query}")
        assert answer.status_code == 422, query


def test_the_public_routes_need_no_sign_in_and_ignore_credentials(api: Api) -> None:
    size = api.dep.audit.checkpoint().tree_size
    paths = (
        "checkpoint",
        "audit-key",
        f"consistency?old=1&new={size}",
        f"inclusion?index=0&size={size}",
    )
    for path in paths:
        assert api.client.get(f"{BASE}/{path}").status_code == 200, path
        bad = {"Authorization": "Bearer ppk_not_a_key"}
        assert api.client.get(f"{BASE}/{path}", headers=bad).status_code == 200, path


# -- the CLI ---------------------------------------------------------------------------------


def test_the_cli_prints_the_key_and_verifies_both_file_formats(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    d = ["--dir", str(home)]
    result = runner.invoke(cli, ["audit", "public-key", *d])
    assert result.exit_code == 0, result.output
    with Deployment.open(home) as dep:
        signer = dep.audit.signer
        assert result.output == signer.note_verifier.vkey() + "\n"
        verifier = NoteVerifier.parse(result.output)
        tree = dep.audit.tree()
        old = sign_checkpoint(signer, tree.size, tree.root(), datetime.now(UTC), fmt=FORMAT_V1)
    old_file = tmp_path / "old-witness.json"
    old_file.write_text(old.to_json() + "\n", encoding="utf-8")  # as --out wrote it before
    note_file = tmp_path / "witness.note"
    result = runner.invoke(cli, ["audit", "checkpoint", "--out", str(note_file), *d])
    assert result.exit_code == 0, result.output
    note = note_file.read_bytes().decode("utf-8")
    assert Checkpoint.from_note(note, verifier).tree_size == old.tree_size
    assert runner.invoke(cli, ["cameras", "add", "gate-7", *d]).exit_code == 0
    for kept in (old_file, note_file):
        result = runner.invoke(cli, ["audit", "verify", "--checkpoint", str(kept), *d])
        assert result.exit_code == 0, result.output
        assert f"the log extends the witness checkpoint of {old.tree_size} entries" in (
            result.output
        )
        assert "audit log verified" in result.output
    # A note signed by another deployment's key is refused, with the reason.
    foreign = tmp_path / "foreign.note"
    other = AuditSigner.generate()
    foreign.write_text(
        sign_checkpoint(other, old.tree_size, old.root, datetime.now(UTC)).to_note(), "utf-8"
    )
    result = runner.invoke(cli, ["audit", "verify", "--checkpoint", str(foreign), *d])
    assert result.exit_code != 0
    assert "no signature on the note is by a key given to verify it" in result.output
    with Deployment.open(home) as dep:
        assert read_checkpoint(note, dep.audit.signer.public_key).format == FORMAT_NOTE
