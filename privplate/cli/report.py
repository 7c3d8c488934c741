"""`privplate report`: the public transparency report, as Markdown or JSON."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from privplate.cli.app import DirOption, console
from privplate.deployment import Deployment
from privplate.transparency import build_report, period_ending
from privplate.transparency.markdown import render_markdown


def report_command(
    days: Annotated[int, typer.Option(min=1, max=3660, help="Length of the period.")] = 30,
    end: Annotated[
        str | None,
        typer.Option(help="Last day of the period (YYYY-MM-DD, UTC, included); default today."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of Markdown.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write here instead of printing.")] = None,
    home: DirOption = None,
) -> None:
    """Build the transparency report from this deployment's own records.

    Writing it with --out records its SHA-256 in the audit log (transparency.published), so
    a published copy can be matched to the log.
    """
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
        out.write_text(text, encoding="utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        dep.audit.record(
            actor=dep.actor,
            action="transparency.published",
            details={
                "period": [start.isoformat(), stop.isoformat()],
                "format": "json" if as_json else "markdown",
                "sha256": digest,
            },
        )
    console.print(f"wrote {out} (sha256 {digest}); recorded in the audit log")
