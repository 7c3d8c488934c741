"""The live terminal view of `privplate edge run` (figures only, never a plate)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from privplate.edge.runtime import Edge
    from privplate.edge.sources import Source


def render(edge: Edge, source: Source) -> Table:
    stats = edge.pipeline.stats
    table = Table(title=f"privplate edge ({edge.mode})", show_header=False)
    table.add_row("source", f"{source.name} {getattr(source, 'status', '')}".strip())
    table.add_row("frames/s", f"{stats.rate(stats.frames):.1f}")
    table.add_row("plates/s", f"{stats.rate(stats.plates):.2f}")
    table.add_row("reads", str(stats.reads))
    table.add_row("alerts", str(stats.alerts))
    table.add_row("spool depth", str(edge.spool.depth()))
    table.add_row("uplink", edge.worker.status)
    batches, reads = edge.spool.set_aside_count()
    if batches:
        table.add_row("refused", f"{reads} reads in {batches} batches (privplate edge spool)")
    return table


@contextmanager
def live_display(edge: Edge, source: Source, *, console: Console, enabled: bool) -> Iterator[None]:
    if not enabled:
        with nullcontext():
            yield
        return
    with Live(
        get_renderable=lambda: render(edge, source),
        console=console,
        refresh_per_second=2,
        transient=False,
    ):
        yield
