"""The live terminal view of `privplate edge run` (figures only, never a plate).

It shows the edge's snapshot (privplate.edge.snapshot): a line per camera, then the spool
and the uplink, the same figures the device reports to the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from privplate.edge.runtime import Edge


def _ago(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    seconds = max(0.0, (now - at).total_seconds())
    return f"{seconds:.0f}s ago" if seconds < 120 else at.strftime("%H:%M:%S")


def render(edge: Edge) -> Group:
    shot = edge.snapshot()
    cameras = Table(title=f"privplate edge ({escape(shot.mode)})")
    for column in ("camera", "source", "frames/s", "skipped (motion)", "reads", "last read"):
        cameras.add_column(column, justify="left" if column in ("camera", "source") else "right")
    for cam in shot.cameras:
        cameras.add_row(
            escape(cam.camera_id),
            escape(f"{cam.source} {cam.status}".strip()),
            f"{cam.frames_per_second:.1f}",
            str(cam.frames_skipped_motion),
            str(cam.reads),
            _ago(cam.last_read_at, shot.taken_at),
        )
    totals = Table(show_header=False)
    seen = sum(c.sightings for c in shot.cameras)
    totals.add_row("plates/s", f"{sum(edge_rates(edge)):.2f} ({seen} seen)")
    totals.add_row("alerts", str(sum(c.alerts for c in shot.cameras)))
    age = shot.spool_oldest_age_seconds
    oldest = f", oldest {age:.0f}s" if age is not None else ""
    totals.add_row("spool depth", f"{shot.spool_depth}{oldest}")
    totals.add_row("uplink", escape(shot.uplink_status))
    if shot.set_aside_reads:
        totals.add_row("refused", f"{shot.set_aside_reads} reads (privplate edge spool)")
    return Group(cameras, totals)


def edge_rates(edge: Edge) -> list[float]:
    """Plates per second of each camera since it started."""
    return [lane.pipeline.stats.rate(lane.pipeline.stats.plates) for lane in edge.lanes]


@contextmanager
def live_display(edge: Edge, *, console: Console, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    with Live(
        get_renderable=lambda: render(edge),
        console=console,
        refresh_per_second=2,
        transient=False,
    ):
        yield
