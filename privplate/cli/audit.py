"""`privplate audit`: verify the log, write checkpoints for witnesses, show entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from privplate.audit import Checkpoint, verify_log
from privplate.cli.app import DirOption, console, err_console, make_app
from privplate.deployment import Deployment
from privplate.errors import AuditError

app = make_app("Verify the tamper-evident audit log, write checkpoints, show entries.")


@app.command("verify")
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint file kept by a witness: prove today's log extends it.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    home: DirOption = None,
) -> None:
    """Recompute the whole tree and check every entry, signature and checkpoint."""
    witness = Checkpoint.from_json(checkpoint.read_text()) if checkpoint else None
    with Deployment.open(home) as dep:
        report = verify_log(
            dep.db, dep.audit.signer, witness=witness, stored=dep.audit.checkpoints()
        )
    console.print(
        f"{report.entries} entries ({report.pruned} pruned), root {report.root.hex()}, "
        f"{report.checkpoints_checked} stored checkpoints checked"
    )
    if witness is not None and report.witness_checked:
        console.print(
            f"the log extends the witness checkpoint of {witness.tree_size} entries "
            f"({witness.time.isoformat()})"
        )
    if not report.ok:
        for problem in report.problems:
            err_console.print(f"[bold red]FAIL[/] {problem}")
        raise typer.Exit(1)
    console.print("[green]audit log verified[/]")


@app.command("checkpoint")
def checkpoint(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the signed checkpoint here, for a witness."),
    ] = None,
    home: DirOption = None,
) -> None:
    """Sign and store the current tree head, unless the latest checkpoint already covers it
    (the server signs one every audit.checkpoint_interval_minutes on its own)."""
    with Deployment.open(home) as dep:
        fresh = dep.audit.sign_if_grown()
        signed = fresh or dep.audit.latest_own_checkpoint()
    if signed is None:
        raise AuditError("the audit log is empty: there is nothing to sign yet")
    if fresh is not None:
        console.print(f"checkpoint of {signed.tree_size} entries signed, root {signed.root.hex()}")
    else:
        console.print(
            f"the log has not grown since the checkpoint of {signed.tree_size} entries signed "
            f"{signed.time.isoformat(timespec='seconds')}: nothing new to sign"
        )
    if out is not None:
        out.write_text(signed.to_json() + "\n", encoding="utf-8")
        console.print(f"written to {out}: give it to a witness (auditor, council clerk)")


@app.command("prune")
def prune(home: DirOption = None) -> None:
    """Erase the content of entries older than the audit retention window (a whole prefix).

    Leaf hashes stay, so the tree and every checkpoint remain verifiable; the prune itself is
    recorded in the log.
    """
    with Deployment.open(home) as dep:
        window = dep.settings.retention_window("audit_entries")
        cutoff = datetime.now(UTC) - window
        count = dep.audit.prune_before(
            cutoff,
            actor=dep.actor,
            policy=f"retention.audit_entries = {window.days} days",
            oldest_allowed=cutoff,
        )
    console.print(f"{count} entries older than {cutoff.isoformat(timespec='seconds')} pruned")


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AuditError(
            f"time {text!r} is not ISO 8601 (e.g. 2026-11-22 or 2026-11-22T10:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command("show")
def show(
    actor: Annotated[str | None, typer.Option(help="Only entries by this actor.")] = None,
    action: Annotated[str | None, typer.Option(help="Only actions starting with this.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time (ISO 8601, UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601, UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    home: DirOption = None,
) -> None:
    """List audit entries, filtered by actor, action and time."""
    with Deployment.open(home) as dep:
        rows = list(
            dep.audit.entries(
                actor=actor, action=action, since=_when(since), until=_when(until), limit=limit
            )
        )
    if as_json:
        for row in rows:
            body = row.entry.to_json() if row.entry else {"seq": row.seq, "pruned": True}
            console.print_json(json.dumps(body), indent=None)
        return
    table = Table("#", "time", "actor", "action", "details")
    for row in rows:
        details = json.dumps(row.entry.details, sort_keys=True) if row.entry else "(pruned)"
        table.add_row(
            str(row.seq),
            row.created_at.isoformat(timespec="seconds"),
            row.actor,
            row.action,
            details,
        )
    console.print(table)
