"""`privplate alerts`: the alerts the deployment raised (hotlist hits), newest last.

An alert names the hotlist entry (list, reason, case number) and the camera, never a plate.
"""

from __future__ import annotations

from typing import Annotated

import typer

from privplate.alerts.records import alerts_after, latest_alert_id
from privplate.cli.app import DirOption, console, make_app
from privplate.deployment import Deployment

app = make_app("Alerts raised by hotlist hits: list them (never a plate).")


@app.command("list")
def list_(
    last: Annotated[int, typer.Option(min=1, max=1000, help="How many of the newest.")] = 20,
    home: DirOption = None,
) -> None:
    """The newest alerts: when, which camera, which hotlist entry, and what came of it."""
    with Deployment.open(home) as dep:
        newest = latest_alert_id(db=dep.db)
        alerts = alerts_after(db=dep.db, after_id=max(0, newest - last), limit=last)
    if not alerts:
        console.print("no alerts")
        return
    for a in alerts:
        if a.kind != "hotlist_hit":  # a silent camera or a spool backlog, raised or cleared
            console.print(
                f"alert {a.id}  {a.observed_at.isoformat(timespec='seconds')}  camera "
                f"{a.camera_id}  device {a.device_id}: {a.reason}"
                + (f" (clears alert {a.clears})" if a.clears else ""),
                soft_wrap=True,
                markup=False,
            )
            continue
        # One line per alert, soft-wrapped, so a narrow terminal never splits a field.
        match = "an alternate reading" if a.via_alternate else "the best reading"
        outcome = f"; outcome {a.outcome}" if a.outcome else ""
        console.print(
            f"alert {a.id}  {a.observed_at.isoformat(timespec='seconds')}  camera {a.camera_id}"
            f"  hotlist {a.hotlist}: {a.reason} (case {a.case_number or '-'}), matched on "
            f"{match}{outcome}",
            soft_wrap=True,
            markup=False,
        )
