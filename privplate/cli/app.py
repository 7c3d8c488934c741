"""The root Typer app and the one place where errors become messages and exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from privplate.errors import PrivplateError

#: Modules of an optional extra -> the extra that brings them (pyproject.toml).
EXTRA_OF = {
    "cv2": "edge",
    "onnxruntime": "edge",
    "fast_plate_ocr": "edge",
    "numpy": "edge",
    "fastapi": "server",
    "starlette": "server",
    "uvicorn": "server",
    "apscheduler": "server",
    "httpx": "server",
    "psycopg": "postgres",
}

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class PrivplateGroup(TyperGroup):
    """Turns every PrivplateError into one red line on stderr and its exit code.

    Tracebacks (which could show local variables) are never printed for expected failures.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except PrivplateError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
            raise typer.Exit(exc.exit_code) from None
        except OperationalError as exc:
            # The database refused or could not be reached: the driver's first line says why
            # (host, port, role); the statement and its parameters are not part of it.
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            hint = escape(f"the database cannot be used: {reason}")
            err_console.print(f"[bold red]error:[/] {hint}", markup=True, soft_wrap=True)
            raise typer.Exit(69) from None  # EX_UNAVAILABLE
        except ModuleNotFoundError as exc:
            # A command of an extra this box did not install: say which, not a traceback.
            extra = EXTRA_OF.get((exc.name or "").split(".")[0])
            if extra is None:
                raise
            hint = escape(
                f"this command needs the {extra} extra ({exc.name} is not installed): "
                f"pip install 'privplate[{extra}]'"
            )
            err_console.print(f"[bold red]error:[/] {hint}", markup=True, soft_wrap=True)
            raise typer.Exit(69) from None  # EX_UNAVAILABLE


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
