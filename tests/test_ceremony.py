"""Key ceremonies from the CLI: dealing, rotation and re-sharing without changing X."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privplate.ceremony.ceremony import hold_ceremony, reshare
from privplate.ceremony.sharefile import read_share_file
from privplate.cli.main import app
from privplate.deployment import Deployment
from privplate.errors import ConfigError, InvalidRequest, SealingError
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.settings import load_settings

runner = CliRunner()
OFFICERS = ("cleo", "omar", "pat", "quinn")


def _officers(dep: Deployment) -> None:
    for name in OFFICERS:
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="t", name=name, role=Role.COMPLIANCE, password=None
        )


def test_cli_ceremony_writes_private_share_files_and_the_public_key(
    home: Path, tmp_path: Path
) -> None:
    with Deployment.open(home) as dep:
        _officers(dep)
    out_dir = tmp_path / "shares"
    stdin = "".join(f"passphrase of {n} here\n" for n in ("cleo", "omar", "pat"))
    result = runner.invoke(
        app,
        [
            "keys",
            "ceremony",
            "--officers",
            "cleo,omar,pat",
            "--threshold",
            "2",
            "--out",
            str(out_dir),
            "--secrets-stdin",
            "--dir",
            str(home),
        ],
        input=stdin,
    )
    assert result.exit_code == 0, result.output
    files = sorted(out_dir.iterdir())
    assert [f.name for f in files] == ["cleo.share", "omar.share", "pat.share"]
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    public_key = load_settings(home).evidence_public_key
    assert public_key and public_key in result.output
    share = read_share_file(files[0])
    assert share.public_key.hex() == public_key and share.threshold == 2
    assert "box" in json.loads(files[0].read_text()) and share.open("passphrase of cleo here")
    with pytest.raises(SealingError, match="wrong passphrase"):
        share.open("not the passphrase")
    with Deployment.open(home) as dep:
        entry = next(iter(dep.audit.entries(action="keys.ceremony")))
        assert entry.entry is not None and entry.entry.details["public_key"] == public_key


def test_ceremony_refuses_bad_officer_lists(home: Path, tmp_path: Path) -> None:
    with Deployment.open(home) as dep:
        _officers(dep)
        accounts.create_user(
            db=dep.db, audit=dep.audit, actor="t", name="ivy", role=Role.INVESTIGATOR, password=None
        )
        for officers, threshold, words in [
            (["cleo", "omar"], 1, "at least 2"),
            (["cleo", "cleo"], 2, "duplicate"),
            (["cleo", "ivy"], 2, "not an active compliance officer"),
            (["cleo", "omar"], 3, "more than the 2 officers"),
        ]:
            with pytest.raises(InvalidRequest, match=words):
                hold_ceremony(
                    dep,
                    officers=[(n, "long enough passphrase") for n in officers],
                    threshold=threshold,
                    out_dir=tmp_path / "x",
                    strength="interactive",
                )


def test_reshare_keeps_x_and_rotation_retires_it(home: Path, tmp_path: Path) -> None:
    with Deployment.open(home) as dep:
        _officers(dep)
        first = hold_ceremony(
            dep,
            officers=[(n, f"pass phrase {n}") for n in ("cleo", "omar", "pat")],
            threshold=2,
            out_dir=tmp_path / "a",
            strength="interactive",
        )
        old = [(read_share_file(first.files[n]), f"pass phrase {n}") for n in ("cleo", "pat")]
        with pytest.raises(SealingError, match="wrong passphrase"):
            reshare(
                dep,
                old_shares=[(old[0][0], "wrong one here!")],
                officers=[(n, "x" * 12) for n in ("cleo", "omar")],
                threshold=2,
                out_dir=tmp_path / "b",
                strength="interactive",
            )
        second = reshare(
            dep,
            old_shares=old,
            officers=[(n, f"new phrase {n}") for n in ("omar", "pat", "quinn")],
            threshold=2,
            out_dir=tmp_path / "b",
            strength="interactive",
        )
        assert second.public_key == first.public_key
        assert second.share_set_id != first.share_set_id
        # The old shares no longer re-share (their set was superseded).
        with pytest.raises(SealingError, match="older share set"):
            reshare(
                dep,
                old_shares=old,
                officers=[(n, "x" * 12) for n in ("cleo", "omar")],
                threshold=2,
                out_dir=tmp_path / "c",
                strength="interactive",
            )
        third = hold_ceremony(
            dep,
            officers=[(n, f"third phrase {n}") for n in ("cleo", "quinn")],
            threshold=2,
            out_dir=tmp_path / "d",
            strength="interactive",
        )
        assert third.public_key != first.public_key
        rotation = next(iter(dep.audit.entries(action="keys.ceremony", newest_first=True)))
        assert rotation.entry is not None and rotation.entry.details["rotation"] is True
    assert load_settings(home).evidence_public_key == third.public_key.hex()
    with pytest.raises(ConfigError):
        read_share_file(tmp_path / "missing.share")
