"""`privplate purge`, `privplate status`, `privplate retention run` and `privplate holds`."""

from __future__ import annotations

import contextlib
import json
import signal
import uuid
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from privplate.cli.app import DirOption, console, err_console, make_app
from privplate.deployment import Deployment
from privplate.errors import ConfigError
from privplate.jurisdiction import format_duration
from privplate.leader import LeaderTick, acquire_tick, leader_only
from privplate.retention.holds import (
    HoldKind,
    approve_hold,
    list_holds,
    release_hold,
    request_hold,
)
from privplate.retention.purge import PurgeReport, purge
from privplate.retention.status import retention_status

retention_app = make_app("Run retention on a schedule.")
holds_app = make_app("Legal holds: keep a read or evidence item through purges.")


def _summary(report: PurgeReport) -> str:
    if report.skipped:
        return "another purge is running; skipped"
    verb = "would delete" if report.dry_run else "deleted"
    oldest = (
        report.oldest_remaining_read.isoformat(timespec="seconds")
        if report.oldest_remaining_read
        else "none"
    )
    return (
        f"{verb} {report.reads_total} read rows in {len(report.reads_deleted)} epochs and "
        f"{report.evidence_deleted} evidence items; {len(report.epochs_destroyed)} epoch keys "
        f"destroyed; {len(report.partitions_dropped)} partitions dropped; oldest remaining "
        f"read {oldest}"
    )


def purge_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count, change nothing.")] = False,
    home: DirOption = None,
) -> None:
    """Delete what is past its retention window and destroy the keys of dead epochs."""
    with Deployment.open(home) as dep:
        report = purge(dep, dry_run=dry_run)
    console.print(_summary(report))


def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    home: DirOption = None,
) -> None:
    """Show the retention promise and the age of the oldest read that is not on hold."""
    with Deployment.open(home) as dep:
        status = retention_status(dep)
    if as_json:
        console.print_json(json.dumps(status.as_dict()))
    else:
        # One short line per promise (soft-wrapped: rich never breaks a sentence in two).
        console.print(
            f"Retention: preset {status.preset}, purge every "
            f"{format_duration(status.purge_interval)}.",
            soft_wrap=True,
        )
        width = max(len(p.kind) for p in status.promises)
        for p in status.promises:
            label = p.kind.replace("non_hit", "non-hit").replace("_", " ").ljust(width)
            age = (
                "none stored"
                if p.oldest_age is None
                else f"oldest {format_duration(p.oldest_age)} old"
            )
            verdict = "ok" if p.kept else f"EXCEEDED (bound {format_duration(p.bound)})"
            console.print(
                f"  {label}  kept {format_duration(p.window)}, {age}: {verdict}", soft_wrap=True
            )
        console.print(
            "Every promise holds: nothing is older than its window plus one purge interval."
            if status.within_bound
            else "A promise is broken: run `privplate purge` and check the purge schedule.",
            soft_wrap=True,
        )
    if not status.within_bound:
        raise typer.Exit(1)


@retention_app.command("run")
def run(
    interval: Annotated[
        int | None,
        typer.Option(
            min=1, help="Seconds between purges (default retention.purge_interval_seconds)."
        ),
    ] = None,
    home: DirOption = None,
) -> None:
    """Purge now and then every INTERVAL seconds until stopped (for a systemd service)."""
    try:
        from apscheduler.schedulers.blocking import BlockingScheduler  # noqa: PLC0415 - optional
    except ImportError:  # pragma: no cover - depends on installed extras
        raise ConfigError(
            "the scheduler needs APScheduler: pip install 'privplate[server]'"
        ) from None
    with Deployment.open(home, actor="scheduler") as dep:
        seconds = interval or dep.settings.retention.purge_interval_seconds
        scheduler = BlockingScheduler(timezone="UTC")

        def job() -> None:
            # A failed run must not stop the schedule; the next run completes the work.
            try:
                console.print(_summary(purge(dep)))
            except Exception as exc:
                err_console.print(f"[bold red]purge failed:[/] {type(exc).__name__}: {exc}")

        # The servers' leadership (privplate.leader): beside them this process purges only
        # while it leads, and takes over, purging at once, when the leader goes away.
        def on_lead() -> None:
            # In the tick's thread: a scheduler call from a job deadlocks with its shutdown.
            console.print("this process leads the purge")
            job()

        scheduler.add_job(
            leader_only(dep.leadership, job),
            "interval",
            seconds=seconds,
            id="retention-purge",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            LeaderTick(dep.leadership, on_lead),
            "interval",
            seconds=acquire_tick(seconds),
            id="leader-tick",
            max_instances=1,
            coalesce=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
        if dep.leadership.hold():
            job()
        else:
            console.print("another process leads the purge; this one takes over if it stops")
        console.print(f"purging every {seconds} s; stop with Ctrl-C or SIGTERM")
        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            scheduler.start()


@holds_app.command("request")
def hold_request(
    target: Annotated[str, typer.Argument(help="Id of the read or evidence item.")],
    case: Annotated[str, typer.Option("--case", help="Case number.")],
    why: Annotated[str, typer.Option("--why", help="Justification.")],
    kind: Annotated[HoldKind, typer.Option("--kind", help="What the id names.")] = HoldKind.READ,
    days: Annotated[int, typer.Option(min=1, max=3650, help="How long the hold lasts.")] = 90,
    home: DirOption = None,
) -> None:
    """Request a legal hold; it protects the item once another person approves it."""
    with Deployment.open(home) as dep:
        hold = request_hold(
            db=dep.db,
            audit=dep.audit,
            kind=kind,
            target_id=_uuid(target),
            case_number=case,
            justification=why,
            requested_by=dep.actor,
            duration=timedelta(days=days),
        )
    console.print(f"hold {hold.id} requested; it needs approval by someone else")


@holds_app.command("approve")
def hold_approve(
    hold_id: Annotated[str, typer.Argument(help="Hold id.")], home: DirOption = None
) -> None:
    """Approve a hold requested by someone else."""
    with Deployment.open(home) as dep:
        hold = approve_hold(
            db=dep.db, audit=dep.audit, hold_id=_uuid(hold_id), approved_by=dep.actor
        )
    console.print(f"hold {hold.id} approved until {hold.expires_at.isoformat(timespec='seconds')}")


@holds_app.command("release")
def hold_release(
    hold_id: Annotated[str, typer.Argument(help="Hold id.")], home: DirOption = None
) -> None:
    """Release a hold early; the item is then purged on schedule."""
    with Deployment.open(home) as dep:
        release_hold(db=dep.db, audit=dep.audit, hold_id=_uuid(hold_id), released_by=dep.actor)
    console.print(f"hold {hold_id} released")


@holds_app.command("list")
def hold_list(home: DirOption = None) -> None:
    """List legal holds."""
    with Deployment.open(home) as dep:
        holds = list_holds(db=dep.db)
    table = Table("hold", "kind", "case", "requested by", "approved by", "expires", "released")
    for h in holds:
        table.add_row(
            str(h.id),
            h.kind,
            h.case_number,
            h.requested_by,
            h.approved_by or "-",
            h.expires_at.isoformat(timespec="seconds"),
            h.released_at.isoformat(timespec="seconds") if h.released_at else "-",
        )
    console.print(table)


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not an id (expected a UUID)") from None
