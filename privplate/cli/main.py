"""The `privplate` command."""

from __future__ import annotations

import platform
from typing import Annotated

import typer

from privplate import __version__
from privplate.cli import (
    alerts,
    approvals,
    audit,
    cameras,
    compliance,
    edge,
    report,
    retention,
    server,
    unseal,
)
from privplate.cli.app import DirOption, console, make_app
from privplate.cli.doctor import render, run_checks
from privplate.deployment import init_deployment
from privplate.jurisdiction import load_presets

app = make_app(
    "privplate: licence plate recognition that stores only keyed tokens, seals images and "
    "enforces retention."
)
app.add_typer(cameras.app, name="cameras")
app.add_typer(alerts.app, name="alerts")
app.add_typer(audit.app, name="audit")
app.add_typer(retention.retention_app, name="retention")
app.add_typer(retention.holds_app, name="holds")
app.add_typer(edge.app, name="edge")
app.add_typer(server.users_app, name="users")
app.add_typer(server.devices_app, name="devices")
app.add_typer(server.hotlist_app, name="hotlist")
app.add_typer(unseal.keys_app, name="keys")
app.add_typer(unseal.unseal_app, name="unseal")
app.add_typer(unseal.officer_app, name="officer")
app.add_typer(compliance.app, name="compliance")
app.add_typer(approvals.app, name="approvals")
app.command("serve")(server.serve)
app.command("migrate")(server.migrate)
app.command("query")(server.query)
app.command("purge")(retention.purge_command)
app.command("status")(retention.status_command)
app.add_typer(report.app, name="report")


@app.command()
def init(
    home: DirOption = None,
    database_url: Annotated[
        str, typer.Option(help="sqlite:///PATH (relative to --dir) or postgresql+psycopg://...")
    ] = "sqlite:///privplate.db",
    preset: Annotated[str, typer.Option(help="Retention preset (see `privplate presets`).")] = (
        "vendor-default-30d"
    ),
    epoch_seconds: Annotated[
        int, typer.Option(min=60, help="Token epoch length in seconds.")
    ] = 86_400,
) -> None:
    """Create a deployment (config, keys, migrated database). Safe to run again."""
    report = init_deployment(
        home, database_url=database_url, preset=preset, epoch_seconds=epoch_seconds
    )
    console.print(f"deployment in [bold]{report.home}[/]")
    for item in report.created:
        console.print(f"  created  {item}")
    for item in report.kept:
        console.print(f"  kept     {item} (already present, not overwritten)")
    console.print("next: `privplate cameras add CAMERA_ID --dir ...`, then `privplate doctor`")


@app.command()
def version() -> None:
    """Print the privplate version."""
    console.print(f"privplate {__version__} (Python {platform.python_version()})")


@app.command()
def doctor(home: DirOption = None) -> None:
    """Check configuration, key file permissions, database and migrations."""
    checks = run_checks(home)
    console.print(render(checks))
    if any(not c.ok and c.required for c in checks):
        raise typer.Exit(1)


@app.command()
def presets() -> None:
    """List the retention presets and their windows."""
    for preset in load_presets().values():
        windows = ", ".join(f"{k}={v}" for k, v in preset.windows.items())
        console.print(
            f"[bold]{preset.name}[/]: {preset.summary}\n  {windows}\n"
            f"  sources: {'; '.join(preset.sources)} (checked {preset.checked})"
        )


def main() -> None:
    app()


if __name__ == "__main__":  # `python -m privplate.cli.main`, as the console script does
    main()
