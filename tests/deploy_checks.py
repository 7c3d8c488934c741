"""Reading the files under deploy/ the way their tools would, and checking what they say
against privplate itself: its command tree, its settings and its routes.

Every check returns the problems it found as sentences naming the file, so that a test can
assert on an empty list and a failure says what to change.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, get_origin

import typer.main
import yaml
from pydantic import BaseModel

import privplate
from privplate.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PACKAGE = Path(privplate.__file__).resolve().parent
#: Shell words that end one command and start another (or send its output somewhere).
_SEPARATORS = {"&&", "||", ";", "|", "&"}
_ENV_NAME = re.compile(r"\bPRIVPLATE_[A-Z0-9_]*[A-Z0-9]\b")


# -- privplate's command tree ---------------------------------------------------------------


# Typer builds its commands with its own copy of click (typer._click), so they are told apart
# by what they have, not by click's classes.
Command = Any


@cache
def root_command() -> Command:
    from privplate.cli.main import app

    return typer.main.get_command(app)


def _is_group(command: Command) -> bool:
    return hasattr(command, "commands")


def _options(command: Command) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option"]


def _arguments(command: Command) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "argument"]


def _option(command: Command, name: str) -> Any | None:
    for param in _options(command):
        if name in (*param.opts, *param.secondary_opts):
            return param
    return None


def check_command(argv: Sequence[str], where: str, *, strict: bool = True) -> list[str]:
    """Problems of one `privplate ...` command line (``argv[0]`` is the program): unknown
    subcommands and options, an option without its value, too many arguments and, when
    ``strict`` (a file that runs it, not prose that mentions it), missing required options or
    a group given without its subcommand."""
    command = root_command()
    path = ["privplate"]
    given: set[str] = set()
    positional = 0
    words = list(argv[1:])
    problems: list[str] = []
    while words:
        word = words.pop(0)
        if word in ("-h", "--help"):
            return problems
        if word.startswith("-") and word != "-":
            name, has_value, _ = word.partition("=")
            option = _option(command, name)
            if option is None:
                problems.append(f"{where}: `{' '.join(path)}` has no option {name}")
                continue
            given.add(option.name or name)
            takes_value = not option.is_flag
            if takes_value and not has_value:
                if not words or words[0] in _SEPARATORS:
                    problems.append(f"{where}: `{' '.join(path)} {name}` needs a value")
                else:
                    words.pop(0)
            continue
        if _is_group(command) and positional == 0:
            sub = command.commands.get(word)
            if sub is None:
                problems.append(f"{where}: `{' '.join(path)}` has no command {word!r}")
                return problems
            command, path, given = sub, [*path, word], set()
            continue
        positional += 1
    return problems + _incomplete(command, path, given, positional, where, strict=strict)


def usage_error() -> type[Exception]:
    """The error the CLI raises for a line it refuses (click's UsageError, from typer's own
    copy of click)."""
    error: type[Exception] = importlib.import_module("typer._click.exceptions").UsageError
    return error


def parse_command(argv: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """``argv`` parsed by privplate's own command tree, as running it would (typer's click
    contexts, group by group): the command's path and its parameters' values. A line the CLI
    refuses raises click's UsageError, as `privplate` would print it."""
    command = root_command()
    path = ["privplate"]
    args = list(argv[1:])
    parent = None
    while True:
        ctx = command.make_context(path[-1], args, parent=parent)
        if not _is_group(command):
            return path, dict(ctx.params)
        # click keeps the subcommand's name apart from its arguments.
        rest = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
        name, command, args = command.resolve_command(ctx, rest)
        path.append(str(name))
        parent = ctx


def _incomplete(
    command: Command, path: list[str], given: set[str], positional: int, where: str, *, strict: bool
) -> list[str]:
    """What a command line that parsed lacks: arguments, required options, a subcommand."""
    shown = " ".join(path)
    if _is_group(command):
        needs = strict and not command.invoke_without_command
        return [f"{where}: `{shown}` needs a subcommand"] if needs else []
    problems = []
    arguments = _arguments(command)
    if all(a.nargs >= 0 for a in arguments) and positional > sum(a.nargs for a in arguments):
        problems.append(f"{where}: `{shown}` takes {len(arguments)} argument(s)")
    if strict:
        problems += [
            f"{where}: `{shown}` needs {p.opts[0]}"
            for p in _options(command)
            if p.required and p.name not in given
        ]
        problems += [
            f"{where}: `{shown}` needs its {p.name} argument"
            for p in arguments
            if p.required and positional == 0
        ]
    return problems


def is_privplate(word: str) -> bool:
    return PurePosixPath(word).name == "privplate"


def shell_commands(text: str) -> Iterator[list[str]]:
    """The privplate command lines of one shell command string (``a && privplate x | y``),
    past ``sudo -u USER``, ``exec`` and variable assignments; redirections dropped."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return
    segment: list[str] = []
    redirected = False
    for word in [*words, ";"]:
        if redirected:
            redirected = False
        elif word in _SEPARATORS:
            yield from _program(segment)
            segment = []
        elif set(word) <= set("<>&") and word:
            redirected = True  # its target is no argument, nor a file descriptor before it
            if segment and segment[-1].isdigit():
                segment.pop()
        else:
            segment.append(word)


def _program(segment: list[str]) -> Iterator[list[str]]:
    words = list(segment)
    while words and (
        words[0] in ("sudo", "exec", "env") or re.fullmatch(r"[A-Za-z_]\w*=.*", words[0])
    ):
        if words.pop(0) == "sudo":
            while words and words[0].startswith("-"):
                if words.pop(0) in ("-u", "-g") and words:
                    words.pop(0)
    if words and is_privplate(words[0]):
        yield words


# -- settings --------------------------------------------------------------------------------


def setting_problem(name: str) -> str | None:
    """Why ``name`` (PRIVPLATE_...) is no setting, or None when pydantic-settings reads it
    (the prefix, then field names joined by the "__" delimiter)."""
    parts = name.removeprefix("PRIVPLATE_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        found = model.model_fields.get(part)
        if found is None:
            section = ".".join(parts[:i]) or "settings"
            return f"{section} has no field {part!r}"
        annotation = found.annotation
        rest = parts[i + 1 :]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        if rest and get_origin(annotation) is not dict:
            return f"{'.'.join(parts[: i + 1])} is not a section"
        return None
    return None


@cache
def non_setting_variables() -> frozenset[str]:
    """PRIVPLATE_* names the code reads itself (the CLI's server URL...): every complete name
    in a string literal of privplate's source that is not a setting."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        names.update(re.findall(r"[\"'](PRIVPLATE_[A-Z0-9_]*[A-Z0-9])[\"']", path.read_text()))
    return frozenset(n for n in names if setting_problem(n) is not None)


def env_problems(text: str, where: str) -> list[str]:
    problems = []
    for name in sorted(set(_ENV_NAME.findall(text))):
        why = setting_problem(name)
        if why is not None and name not in non_setting_variables():
            problems.append(f"{where}: {name} is neither a setting ({why}) nor read by privplate")
    return problems


# -- routes ----------------------------------------------------------------------------------


@cache
def get_routes() -> frozenset[str]:
    """Paths the server answers GET on (the app of an empty deployment: nothing is started)."""
    from privplate.api.app import create_app, iter_routes

    app = create_app(DEPLOY)
    return frozenset(
        path
        for route in iter_routes(app.routes)
        if "GET" in (getattr(route, "methods", None) or ())
        and isinstance(path := getattr(route, "path", None), str)
    )


# -- Containerfile ---------------------------------------------------------------------------


@dataclass
class Image:
    """What deploy/container/Containerfile says about the image it builds (its last stage)."""

    user: str = ""
    expose: set[int] = field(default_factory=set)
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    run: list[str] = field(default_factory=list)
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def argv(self, entrypoint: list[str] | None, command: list[str] | None) -> list[str]:
        """The process a container runs, with the runtime's overrides: a new entrypoint drops
        the image's CMD too (Docker's and Kubernetes' rule)."""
        if entrypoint is not None:
            return [*entrypoint, *(command or [])]
        return [*self.entrypoint, *(self.cmd if command is None else command)]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continued lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, rest = whole.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    assert not pending, "a Containerfile ends inside a continued line"
    return out


def _exec_form(text: str) -> list[str]:
    if text.startswith("["):
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
        return value
    return ["/bin/sh", "-c", text]


def parse_containerfile(path: Path) -> Image:
    image = Image()
    for keyword, rest in instructions(path.read_text()):
        if keyword == "FROM":
            image = Image()  # a new stage: only the last one is the image
        image.instructions.append((keyword, rest))
        if keyword == "USER":
            image.user = rest
        elif keyword == "EXPOSE":
            image.expose |= {int(p.split("/")[0]) for p in rest.split()}
        elif keyword == "ENV":
            image.env.update(dict(w.split("=", 1) for w in shlex.split(rest)))
        elif keyword == "ENTRYPOINT":
            image.entrypoint = _exec_form(rest)
        elif keyword == "CMD":
            image.cmd = _exec_form(rest)
        elif keyword == "VOLUME":
            image.volumes = _exec_form(rest) if rest.startswith("[") else rest.split()
        elif keyword == "HEALTHCHECK":
            image.healthcheck = _exec_form(rest[rest.index("CMD ") + 4 :].strip())
        elif keyword == "RUN":
            image.run.append(rest)
    return image


def build_stages_run(path: Path) -> list[str]:
    """Every RUN of every stage (the build stage runs privplate too)."""
    return [rest for keyword, rest in instructions(path.read_text()) if keyword == "RUN"]


# -- systemd units ---------------------------------------------------------------------------


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections of a unit file, each key with all its values in order (keys repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} before any [Section]"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def unit_commands(unit: Mapping[str, Mapping[str, list[str]]]) -> Iterator[list[str]]:
    for key, values in unit.get("Service", {}).items():
        if key.startswith("Exec"):
            for value in values:
                yield from shell_commands(value.lstrip("-@:+!"))


def unit_environment(unit: Mapping[str, Mapping[str, list[str]]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in unit.get("Service", {}).get("Environment", []):
        for word in shlex.split(value):
            key, _, val = word.partition("=")
            env[key] = val
    return env


# -- YAML, TOML and the README ---------------------------------------------------------------


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert all(isinstance(d, dict) for d in docs), f"{path}: a document is not a mapping"
    return docs


def k8s_objects() -> dict[str, list[dict[str, Any]]]:
    """Every Kubernetes object under deploy/k8s, by file name (kustomization.yaml apart)."""
    return {
        p.name: yaml_documents(p)
        for p in sorted((DEPLOY / "k8s").glob("*.yaml"))
        if p.name != "kustomization.yaml"
    }


def settings_of(toml_text: str, env: Mapping[str, str], home: Path) -> Settings:
    """The settings a process would load from this privplate.toml and these variables."""
    from privplate.settings import load_settings

    home.mkdir(parents=True, exist_ok=True)
    tomllib.loads(toml_text)  # a syntax error names the file's problem first
    (home / "privplate.toml").write_text(toml_text)
    return load_settings(home, **_env_overrides(env))


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    # As init arguments, not os.environ: the test process's own PRIVPLATE_* stay out of it,
    # and a setting given as JSON (a list, a section) is decoded as pydantic-settings would.
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith("PRIVPLATE_") or setting_problem(name) is not None:
            continue
        keys = name.removeprefix("PRIVPLATE_").lower().split("__")
        target = out
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        try:
            target[keys[-1]] = json.loads(value)
        except ValueError:
            target[keys[-1]] = value
    return out


def readme_commands(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, argv) of each privplate command in the README's shell blocks and
    `inline code`: prose names commands too, so these are checked without ``strict``."""
    in_block = False
    pending = ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block = line.strip() in ("```sh", "```bash", "```console", "```shell")
            continue
        if in_block:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            for argv in shell_commands(pending + line):
                yield number, argv
            pending = ""
            continue
        for span in re.findall(r"`([^`]+)`", line):
            if span.startswith("privplate "):
                cleaned = re.sub(r"[\[\]]", " ", span)
                for argv in shell_commands(cleaned):
                    yield number, argv
