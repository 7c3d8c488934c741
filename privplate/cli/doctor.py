"""`privplate doctor`: check that a deployment can run, and say what to fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from privplate.audit import read_signing_key
from privplate.deployment import Deployment
from privplate.errors import PrivplateError
from privplate.jurisdiction import get_preset
from privplate.settings import CONFIG_FILENAME, Settings, load_settings, resolve_home
from privplate.store import Database


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def run_checks(home: Path | None) -> list[Check]:
    checks: list[Check] = []
    root = resolve_home(home)

    def attempt(name: str, fn: Callable[[], str], *, required: bool = True) -> bool:
        try:
            checks.append(Check(name, True, fn(), required))
            return True
        except PrivplateError as exc:
            checks.append(Check(name, False, str(exc), required))
            return False

    holder: dict[str, Settings] = {}

    def config() -> str:
        if not (root / CONFIG_FILENAME).exists():
            raise PrivplateError(f"{root / CONFIG_FILENAME} is missing; run `privplate init`")
        holder["s"] = load_settings(root)
        return str(root / CONFIG_FILENAME)

    if not attempt("configuration", config):
        return checks
    settings = holder["s"]

    def keyfile() -> str:
        settings.check_key_files()
        return f"{settings.kek_path} (mode 0600)"

    def audit_key() -> str:
        signer = read_signing_key(settings.audit_signing_key_path)
        return f"{settings.audit_signing_key_path} (mode 0600), log {signer.origin}"

    def retention() -> str:
        preset = get_preset(settings.retention.preset)
        window = settings.retention_window("non_hit_reads")
        return f"preset {preset.name}: non-hit reads kept {window}"

    def database() -> str:
        db = Database(settings.resolved_database_url)
        try:
            current, head = db.schema_revision()
        finally:
            db.dispose()
        if current != head:
            raise PrivplateError(
                f"schema at {current or 'nothing'}, newest is {head}: run `privplate init`"
            )
        return f"{db.dialect}, schema {current}"

    def keyring() -> str:
        with Deployment.open(root, settings=settings) as dep:
            key = dep.keyring.current_key()
        return f"current epoch {key.epoch_id} key decrypts"

    def evidence_key() -> str:
        if settings.evidence_public_key_bytes is None:
            raise PrivplateError(
                "evidence_public_key is not set: evidence cannot be sealed until a key "
                "ceremony publishes one"
            )
        return settings.evidence_public_key[:16] + "…"

    attempt("key-encryption key", keyfile)
    attempt("audit signing key", audit_key)
    attempt("retention", retention)
    if attempt("database", database):
        attempt("keyring", keyring)
    attempt("evidence sealing key", evidence_key, required=False)
    return checks


def render(checks: list[Check]) -> Table:
    table = Table("check", "", "detail", show_lines=False)
    for c in checks:
        mark = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]warn[/]")
        table.add_row(c.name, mark, c.detail)
    return table
