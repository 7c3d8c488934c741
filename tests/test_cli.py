"""The CLI: init, cameras, doctor, version, configuration errors, and help for everything."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from privplate.cli.main import app
from privplate.errors import ConfigError
from privplate.settings import load_settings

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def test_init_is_idempotent_and_never_overwrites_keys(tmp_path: Path) -> None:
    home = tmp_path / "d"
    code, out = invoke("init", "--dir", str(home))
    assert code == 0, out
    kek = home / "keys" / "kek.key"
    assert kek.stat().st_mode & 0o777 == 0o600
    assert (home / "keys").stat().st_mode & 0o777 == 0o700
    before = kek.read_bytes()
    config_before = (home / "privplate.toml").read_text()
    code, out = invoke("init", "--dir", str(home))
    assert code == 0 and "kept" in out
    assert kek.read_bytes() == before
    assert (home / "privplate.toml").read_text() == config_before


def test_init_then_cameras_then_doctor(tmp_path: Path, database_url: str) -> None:
    home = str(tmp_path / "d")
    assert invoke("init", "--dir", home, "--database-url", database_url)[0] == 0
    assert invoke("cameras", "add", "gate-1", "--name", "North gate", "--dir", home)[0] == 0
    code, out = invoke("cameras", "add", "gate-1", "--dir", home)
    assert code == 1 and "already registered" in out
    code, out = invoke("cameras", "add", "Bad Id!", "--dir", home)
    assert code == 65 and "camera id must be" in out
    code, out = invoke("cameras", "list", "--dir", home)
    assert code == 0 and "North gate" in out
    code, out = invoke("doctor", "--dir", home)
    assert code == 0, out
    assert "FAIL" not in out


def test_doctor_fails_on_unsafe_key_file(tmp_path: Path) -> None:
    home = tmp_path / "d"
    invoke("init", "--dir", str(home))
    (home / "keys" / "kek.key").chmod(0o644)
    code, out = invoke("doctor", "--dir", str(home))
    assert code == 1 and "chmod 600" in out
    code, out = invoke("cameras", "list", "--dir", str(home))
    assert code == 78 and "chmod 600" in out


def test_commands_without_a_deployment_say_what_to_do(tmp_path: Path) -> None:
    code, out = invoke("cameras", "list", "--dir", str(tmp_path / "nothing"))
    assert code == 78 and "privplate init" in out
    code, out = invoke("doctor", "--dir", str(tmp_path / "nothing"))
    assert code == 1 and "privplate init" in out


def test_missing_key_file_is_named(tmp_path: Path) -> None:
    home = tmp_path / "d"
    invoke("init", "--dir", str(home))
    (home / "keys" / "kek.key").unlink()
    code, out = invoke("cameras", "list", "--dir", str(home))
    assert code == 78 and "kek.key is missing" in out


def test_privplate_home_is_the_default_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVPLATE_HOME", str(tmp_path / "h"))
    assert invoke("init")[0] == 0
    assert (tmp_path / "h" / "privplate.toml").exists()
    assert invoke("cameras", "add", "cam-1")[0] == 0


def test_version() -> None:
    code, out = invoke("version")
    assert code == 0 and out.startswith("privplate ")


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ('[retention]\npreset = "atlantis"\n', {}, "unknown retention preset"),
        ('[retention]\nwindows = { evidence = "0s" }\n', {}, "longer than 0"),
        ('[retention]\nwindows = { non_hit_reads = "90d" }\n', {}, "allow_longer_than_preset"),
        ('[retention]\nwindows = { non_hit_reads = "ten days" }\n', {}, "not understood"),
        ("epoch_seconds = 10\n", {}, "epoch_seconds"),
        ("", {"PRIVPLATE_EPOCH_SECONDS": "5"}, "epoch_seconds"),
        ('evidence_public_key = "zz"\n', {}, "64 hex"),
        ('[plates]\nconfusables = { B = "8", 8 = "3" }\n', {}, "idempotent"),
        ("colour = 'blue'\n", {}, "colour"),
    ],
)
def test_bad_configuration_says_what_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: dict[str, str], message: str
) -> None:
    (tmp_path / "privplate.toml").write_text(toml)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "privplate.toml").write_text('[retention]\npreset = "maine"\n')
    assert load_settings(tmp_path).retention.preset == "maine"
    monkeypatch.setenv("PRIVPLATE_RETENTION__PRESET", "new-hampshire")
    settings = load_settings(tmp_path)
    assert settings.retention_window("non_hit_reads").total_seconds() == 180
    monkeypatch.setenv("PRIVPLATE_RETENTION__WINDOWS", '{"non_hit_reads": "1m"}')
    assert load_settings(tmp_path).retention_window("non_hit_reads").total_seconds() == 60


def test_a_relative_models_dir_from_the_environment_is_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README runs `PRIVPLATE_MODELS_DIR=../shared/models privplate ... --dir deployment`:
    the variable means ../shared/models from the shell, not from inside the deployment."""
    from privplate.vision.factory import models_dir

    home, work = tmp_path / "deployment", tmp_path / "repo"
    home.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PRIVPLATE_MODELS_DIR", "../shared/models")
    assert models_dir(load_settings(home)) == tmp_path / "shared" / "models"
    # In privplate.toml a relative path stays relative to the deployment.
    monkeypatch.delenv("PRIVPLATE_MODELS_DIR")
    (home / "privplate.toml").write_text('models_dir = "models"\n')
    assert models_dir(load_settings(home)) == home / "models"


def _commands(group: typer.Typer, prefix: str = "") -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = [
        (prefix + (cmd.name or cmd.callback.__name__), cmd.callback)  # type: ignore[union-attr]
        for cmd in group.registered_commands
    ]
    for sub in group.registered_groups:
        found += _commands(sub.typer_instance, f"{prefix}{sub.name} ")  # type: ignore[arg-type]
    return found


@pytest.mark.parametrize("name", [n for n, _ in _commands(app)])
def test_every_command_has_help(name: str) -> None:
    callbacks = dict(_commands(app))
    assert (callbacks[name].__doc__ or "").strip(), f"`privplate {name}` has no help text"
    code, out = invoke(*name.split(), "--help")
    assert code == 0 and "Usage" in out
    if name not in ("version", "presets"):
        # Commands that act on a deployment take --dir; those that talk to a server (an
        # officer's own machine) take --server instead.
        assert "--dir" in out or "--server" in out, f"`privplate {name}` must take --dir"


def test_cli_module_is_not_imported_by_the_library() -> None:
    root = Path(__file__).resolve().parent.parent / "privplate"
    for path in root.rglob("*.py"):
        if "cli" in path.parts:
            continue
        assert "privplate.cli" not in path.read_text(), f"{path} imports the CLI"
