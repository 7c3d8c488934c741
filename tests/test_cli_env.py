"""Every documented ``PRIVPLATE_*`` variable can be set without a crash.

The variables are collected from the docs (README.md, everything under deploy/) and from the
CLI itself (option envvars and help texts), so a newly documented one is covered here without
touching this file. A malformed value of a settings variable is a clean configuration error.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner, Result

from privplate.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"PRIVPLATE_[A-Z0-9_]*[A-Z0-9]")
runner = CliRunner()


def _cli_texts() -> list[str]:
    texts: list[str] = []

    def walk(command: click.Command) -> None:
        texts.append(command.help or "")
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            texts.extend([envvar] if isinstance(envvar, str) else list(envvar or []))
            texts.append(getattr(param, "help", None) or "")
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                walk(sub)

    walk(typer.main.get_command(app))
    texts += [p.read_text(encoding="utf-8") for p in (ROOT / "privplate" / "cli").glob("*.py")]
    return texts


def _doc_texts() -> list[str]:
    files = [ROOT / "README.md", *(p for p in (ROOT / "deploy").rglob("*") if p.is_file())]
    return [p.read_text(encoding="utf-8") for p in files]


def documented() -> list[str]:
    return sorted({m for text in _doc_texts() + _cli_texts() for m in NAME.findall(text)})


def documented_examples() -> dict[str, str]:
    """``NAME=value`` as the docs show it."""
    found: dict[str, str] = {}
    for text in _doc_texts():
        for name, value in re.findall(r"(PRIVPLATE_[A-Z0-9_]*[A-Z0-9])=([^\s`'\"]+)", text):
            found.setdefault(name, value)
    return found


def test_the_scan_finds_the_variables_we_know_of() -> None:
    names = documented()
    assert {"PRIVPLATE_HOME", "PRIVPLATE_SERVER_URL", "PRIVPLATE_RETENTION__PRESET"} <= set(names)
    assert "PRIVPLATE_SERVER" not in names  # it would be the settings' `server` section


def _invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def _clean(result: Result) -> bool:
    """Exited (with any code) rather than died of an exception."""
    return result.exception is None or isinstance(result.exception, SystemExit)


def test_every_documented_variable_set_at_once(
    home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {
        **documented_examples(),
        "PRIVPLATE_HOME": str(home),
        "PRIVPLATE_MODELS_DIR": str(home / "models"),
        "PRIVPLATE_SERVER_URL": "http://127.0.0.1:8470",
        "PRIVPLATE_TEST_DATABASE_URL": database_url,
        # The docs' example names a host this machine has not got.
        "PRIVPLATE_DATABASE_URL": database_url,
    }
    missing = [n for n in documented() if n not in values]
    assert not missing, f"no example value for {missing}: show NAME=value in the docs"
    for name in documented():
        monkeypatch.setenv(name, values[name])
    result = _invoke("--help")
    assert result.exit_code == 0, result.output
    result = _invoke("status")  # in $PRIVPLATE_HOME
    assert _clean(result) and result.exit_code == 0, result.output
    assert "preset maine" in result.output  # PRIVPLATE_RETENTION__PRESET took effect


@pytest.mark.parametrize("name", documented())
@pytest.mark.parametrize("value", ["{not json", "x"])
def test_a_malformed_value_is_an_error_message_not_a_traceback(
    home: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    for args in (("--help",), ("status", "--dir", str(home))):
        result = _invoke(*args)
        assert _clean(result), f"{name}={value} `privplate {' '.join(args)}`: {result.exception!r}"
        assert "Traceback" not in result.output
        if result.exit_code not in (0, 1):
            assert result.output.startswith("error:"), result.output


def test_the_old_server_variable_says_what_to_set_instead(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVPLATE_SERVER", "http://127.0.0.1:8470")
    result = _invoke("status", "--dir", str(home))
    assert _clean(result) and result.exit_code == 78, result.output
    assert "PRIVPLATE_SERVER_URL" in result.output and "PRIVPLATE_SERVER__KEY" in result.output
