"""`privplate report`: the public transparency report, as Markdown or JSON; `report verify`
checks a published (signed) copy."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from privplate.audit.note import NoteVerifier
from privplate.cli.app import DirOption, PrivplateGroup, console
from privplate.deployment import Deployment
from privplate.errors import AuditError, ConfigError
from privplate.transparency import build_report, period_ending
from privplate.transparency.markdown import render_markdown
from privplate.transparency.signed import (
    check_against_log,
    open_report,
    report_verifier,
    sign_report,
)

app = typer.Typer(
    help="The transparency report (signed when written with --out); `report verify FILE` "
    "checks a published copy.",
    cls=PrivplateGroup,
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def report_command(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, max=3660, help="Length of the period.")] = 30,
    end: Annotated[
        str | None,
        typer.Option(help="Last day of the period (YYYY-MM-DD, UTC, included); default today."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of Markdown.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write it here, signed (a C2SP signed note), instead of printing."),
    ] = None,
    home: DirOption = None,
) -> None:
    """Build the transparency report from this deployment's own records.

    Written with --out it is signed with the deployment's report key, and its SHA-256 is
    recorded in the audit log (transparency.published), so a published copy can be checked
    (`privplate report verify`) and matched to the log.
    """
    if ctx.invoked_subcommand is not None:
        return
    last = date.fromisoformat(end) if end else datetime.now(UTC).date()
    start, stop = period_ending(last, days)
    with Deployment.open(home) as dep:
        report = build_report(dep, start=start, end=stop)
        text = (
            json.dumps(report, indent=2, ensure_ascii=False) + "\n"
            if as_json
            else render_markdown(report)
        )
        if out is None:
            console.print(text, markup=False, highlight=False, soft_wrap=True)
            return
        signed = sign_report(text, dep.audit.signer)
        out.write_text(signed, encoding="utf-8", newline="\n")
        digest = hashlib.sha256(signed.encode()).hexdigest()
        dep.audit.record(
            actor=dep.actor,
            action="transparency.published",
            details={
                "period": [start.isoformat(), stop.isoformat()],
                "format": "json" if as_json else "markdown",
                "sha256": digest,
                "tree_size": report["audit_log"]["tree_size"],
            },
        )
    console.print(f"wrote {out}, signed (sha256 {digest}); recorded in the audit log")


@app.command("verify")
def verify_command(
    file: Annotated[
        Path, typer.Argument(help="A published report (the signed file).", dir_okay=False)
    ],
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="The deployment's report key (name+hash+base64, from "
            "/.well-known/privplate/report-key); without it, the deployment's own (--dir).",
        ),
    ] = None,
    home: DirOption = None,
) -> None:
    """Check a published report's signature and print its period and checkpoint; on the
    deployment (no --key, or --dir given) also check that the log signed that checkpoint and
    still extends it."""
    if not file.is_file():
        raise ConfigError(f"{file} is not a file")
    # The file's bytes as published: read_text would turn CRLF into LF and verify a copy that
    # is not the signed one (and that Go's note.Open refuses).
    try:
        note = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise AuditError(f"{file} is not UTF-8 text: not a signed report") from None
    if key is not None and home is None:
        _, facts = open_report(note, NoteVerifier.parse(key))
        console.print(f"signature verified: {facts.describe()}", markup=False)
        return
    with Deployment.open(home) as dep:
        verifier = report_verifier(dep.audit.signer)
        if key is not None and NoteVerifier.parse(key).vkey() != verifier.vkey():
            raise ConfigError(f"--key is not this deployment's report key ({verifier.vkey()})")
        _, facts = open_report(note, verifier)
        console.print(f"signature verified: {facts.describe()}", markup=False)
        console.print(check_against_log(dep.audit, facts), markup=False)
