"""`privplate audit`: verify the log, write checkpoints for witnesses, show entries."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from privplate.audit.cosigners import configured_witnesses, describe, verify_witnessed
from privplate.audit.public import public_key, public_note
from privplate.audit.signing import read_checkpoint
from privplate.audit.witness import (
    LogInconsistent,
    Witness,
    create_witness_key,
    read_witness_key,
    watch,
)
from privplate.cli.app import DirOption, console, err_console, make_app
from privplate.deployment import Deployment
from privplate.errors import AuditError, PrivplateError

app = make_app("Verify the tamper-evident audit log, write checkpoints, show entries.")


@app.command("verify")
def verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint kept by a witness (a signed note, or an older JSON file): "
            "prove today's log extends it.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    home: DirOption = None,
) -> None:
    """Recompute the whole tree and check every entry, signature and checkpoint."""
    with Deployment.open(home) as dep:
        witness = None
        if checkpoint is not None:
            witness = read_checkpoint(
                checkpoint.read_text(encoding="utf-8"), dep.audit.signer.public_key
            )
        report, witnesses = verify_witnessed(
            dep.audit, configured_witnesses(dep.settings.audit.witnesses), witness=witness
        )
    console.print(
        f"{report.entries} entries ({report.pruned} pruned), root {report.root.hex()}, "
        f"{report.checkpoints_checked} stored checkpoints checked"
    )
    for summary in witnesses:
        console.print(describe(summary), markup=False)
    if witness is not None and report.witness_checked:
        signed = "" if witness.time is None else f" ({witness.time.isoformat()})"
        console.print(
            f"the log extends the witness checkpoint of {witness.tree_size} entries{signed}"
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
        typer.Option(
            "--out",
            help="Also write the signed checkpoint here (a C2SP signed note, as "
            "/.well-known/privplate/checkpoint publishes it), for a witness.",
        ),
    ] = None,
    home: DirOption = None,
) -> None:
    """Sign and store the current tree head, unless the latest checkpoint already covers it
    (the server signs one every audit.checkpoint_interval_minutes on its own)."""
    with Deployment.open(home) as dep:
        fresh = dep.audit.sign_if_grown()
        signed = fresh or dep.audit.note_checkpoint()
        if signed is None:
            raise AuditError("the audit log is empty: there is nothing to sign yet")
        note = public_note(dep.audit, signed.tree_size) if out is not None else ""
    if fresh is not None:
        console.print(f"checkpoint of {signed.tree_size} entries signed, root {signed.root.hex()}")
    else:
        when = "" if signed.time is None else f" signed {signed.time.isoformat(timespec='seconds')}"
        console.print(
            f"the log has not grown since the checkpoint of {signed.tree_size} entries{when}: "
            "nothing new to sign"
        )
    if out is not None:
        out.write_text(note, encoding="utf-8", newline="\n")
        console.print(f"written to {out}: give it to a witness (auditor, council clerk)")


@app.command("public-key")
def public_key_command(home: DirOption = None) -> None:
    """Print the audit key as a note verifier key (name+hash+base64), for witnesses and Go's
    note.NewVerifier; /.well-known/privplate/audit-key serves the same line."""
    with Deployment.open(home) as dep:
        vkey = public_key(dep.audit)
    # Plain print: rich would wrap a long key or read its "[...]" as markup.
    typer.echo(vkey)


@app.command("witness")
def witness_command(
    key: Annotated[Path, typer.Option("--key", help="The witness's own key file.")],
    init: Annotated[
        bool, typer.Option("--init", help="Create the key file (with --name) and print its vkey.")
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(help="With --init: the witness's name, e.g. clerk.springfield.example/w1."),
    ] = None,
    server: Annotated[
        str | None, typer.Option(help="The deployment's address, e.g. https://alpr.example.")
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option(
            "--log-key",
            help="The log's verifier key (`privplate audit public-key` on the deployment, "
            "obtained out of band), or a file holding it.",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(help="The witness's memory of the log: the last checkpoint it accepted."),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit (default).")] = False,
    interval: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            max=86_400.0,
            help="A round every SECONDS until stopped (SIGTERM, Ctrl-C); the exit code then "
            "tells the gravest failure seen.",
        ),
    ] = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            help="CA certificate (PEM) to trust for an https server with its own certificate.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Witness the deployment's audit log from another host (core install only): fetch its
    checkpoint, check it extends the last one seen (consistency proof), then cosign it
    (C2SP tlog-cosignature) and post the cosignature. A rewritten, rolled back or forked log
    is never cosigned: the witness says what it saw and exits 3."""
    if init:
        if name is None:
            raise typer.BadParameter("--init needs --name", param_hint="--name")
        created = create_witness_key(key, name)
        console.print(
            f"witness key written to {key} (keep it on this host); the deployment's "
            "audit.witnesses setting takes this line:",
            markup=False,
        )
        # Plain print: rich would wrap a long key or read "[...]" as markup.
        typer.echo(created.vkey())
        return
    if server is None or log_key is None or state is None:
        raise typer.BadParameter("a witness run needs --server, --log-key and --state")
    if once and interval is not None:
        raise typer.BadParameter("--once or --interval, not both")
    pinned = Path(log_key)
    witness = Witness(
        server=server,
        log_key=pinned.read_text(encoding="utf-8").strip() if pinned.is_file() else log_key,
        cosigner=read_witness_key(key),
        state_path=state,
        ca_file=ca,
    )
    if interval is None:
        console.print(witness.run_once().describe(), markup=False)
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def report(message: str, failure: PrivplateError | None) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        if failure is None:
            console.print(f"{stamp} {message}", markup=False)
        elif isinstance(failure, LogInconsistent):
            err_console.print(f"{stamp} [bold red]REFUSED[/] {escape(message)}")
        else:
            err_console.print(f"{stamp} [yellow]round failed[/] {escape(message)}")

    code = watch(witness, interval=interval, report=report, stop=stop)
    raise typer.Exit(code)


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
