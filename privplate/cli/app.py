"""The root Typer app and the one place where errors become messages and exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from privplate.errors import PrivplateError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class PrivplateGroup(TyperGroup):
    """Turns every PrivplateError into one red line on stderr and its exit code.

    Tracebacks (which could show local variables) are never printed for expected failures.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PrivplateError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


def make_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        help=help_text,
        cls=PrivplateGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,
    )


DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Deployment directory (default: $PRIVPLATE_HOME, else the current directory).",
        show_default=False,
    ),
]
