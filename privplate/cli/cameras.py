"""`privplate cameras`: register, list and deactivate cameras."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from privplate.cli.app import DirOption, console, make_app
from privplate.deployment import Deployment
from privplate.store import list_cameras

app = make_app("Register and list cameras. Reads from unregistered cameras are refused.")


@app.command("add")
def add(
    camera_id: Annotated[str, typer.Argument(help="Camera id, e.g. gate-north (a-z, 0-9, . _ -).")],
    name: Annotated[str, typer.Option("--name", help="Human-readable name.")] = "",
    home: DirOption = None,
) -> None:
    """Register a camera so its edge can send reads."""
    with Deployment.open(home) as dep:
        camera = dep.add_camera(camera_id, name)
    console.print(f"camera [bold]{camera.id}[/] registered")


@app.command("list")
def list_(home: DirOption = None) -> None:
    """List registered cameras."""
    with Deployment.open(home) as dep:
        cameras = list_cameras(db=dep.db)
    table = Table("id", "name", "registered", "active")
    for cam in cameras:
        table.add_row(
            cam.id,
            cam.name,
            cam.created_at.isoformat(timespec="seconds"),
            "yes" if cam.active else "no",
        )
    console.print(table)


@app.command("deactivate")
def deactivate(
    camera_id: Annotated[str, typer.Argument(help="Camera id to deactivate.")],
    home: DirOption = None,
) -> None:
    """Deactivate a camera: its reads are refused from now on (what it stored stays until
    retention removes it), and with [mqtt] Home Assistant loses its entities."""
    with Deployment.open(home) as dep:
        dep.deactivate_camera(camera_id)
    console.print(f"camera [bold]{camera_id}[/] deactivated")
