"""`privplate approvals`: searches that wait for a second person, on this deployment's box.

The same service as the API (privplate.policy.approvals): investigators list and run their own
approved searches, compliance officers list, approve and deny. Nothing here shows the plate of
a pending search.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape

from privplate.cli.app import DirOption, console, make_app
from privplate.cli.server import PasswordStdin, _password, print_answer
from privplate.deployment import Deployment
from privplate.identity import accounts
from privplate.identity.accounts import UserInfo
from privplate.services import Services
from privplate.store.approval_models import OPEN_STATUSES, ApprovalStatus

app = make_app(
    "Searches awaiting a second person's approval: list; approve or deny (compliance "
    "officers); run once approved (the requester)."
)
UserOption = Annotated[str, typer.Option("--user", help="Your privplate user name.")]


@contextmanager
def _as_user(
    home: DirOption, user: str, password_stdin: bool
) -> Iterator[tuple[Services, UserInfo]]:
    """The deployment's services and ``user``, signed in for this one command (audited)."""
    password = _password(password_stdin, confirm=False)
    with Deployment.open(home) as dep, Services(dep) as services:
        person, token, _ = accounts.login(
            db=dep.db, audit=dep.audit, name=user, password=password, hours=1
        )
        try:
            yield services, person
        finally:
            accounts.logout(db=dep.db, audit=dep.audit, user=person, token=token)


@app.command("list")
def list_command(
    user: UserOption,
    status: Annotated[
        ApprovalStatus | None, typer.Option("--status", help="Only requests in this state.")
    ] = None,
    password_stdin: PasswordStdin = False,
    home: DirOption = None,
) -> None:
    """Searches filed for approval, newest first (an investigator sees their own)."""
    with _as_user(home, user, password_stdin) as (services, person):
        pending = services.search_approvals.queue(person, status=status)
    if not pending:
        console.print(
            "no searches filed for approval" + (f" that are {status.value}" if status else "")
        )
    # One line per request (ids stay whole and greppable), the justification below it.
    for p in pending:
        until = (
            f"  until {p.expires_at.isoformat(timespec='minutes')}"
            if p.status in OPEN_STATUSES
            else ""
        )
        console.print(
            f"{p.id}  {p.status.value}  by {p.requested_by}  {p.purpose}  "
            f"case {escape(p.case_number)}  window "
            f"{p.window_start.isoformat(timespec='minutes')} to "
            f"{p.window_end.isoformat(timespec='minutes')}{until}"
        )
        console.print(f"    why: {escape(p.justification)}")


@app.command("approve")
def approve_command(
    approval_id: Annotated[uuid.UUID, typer.Argument(help="The request's id.")],
    user: UserOption,
    note: Annotated[str, typer.Option("--note", help="Why (kept on the record).")] = "",
    password_stdin: PasswordStdin = False,
    home: DirOption = None,
) -> None:
    """Approve a search (a compliance officer who is not the requester)."""
    with _as_user(home, user, password_stdin) as (services, person):
        decided = services.search_approvals.approve(person, approval_id, note=note)
    console.print(
        f"approved {decided.id}: {decided.requested_by} may run it until "
        f"{decided.expires_at.isoformat(timespec='seconds')}"
    )


@app.command("deny")
def deny_command(
    approval_id: Annotated[uuid.UUID, typer.Argument(help="The request's id.")],
    user: UserOption,
    note: Annotated[str, typer.Option("--note", help="Why (kept on the record).")],
    password_stdin: PasswordStdin = False,
    home: DirOption = None,
) -> None:
    """Deny a search: it never runs, and its encrypted plate is deleted."""
    with _as_user(home, user, password_stdin) as (services, person):
        decided = services.search_approvals.deny(person, approval_id, note=note)
    console.print(f"denied {decided.id}")


@app.command("run")
def run_command(
    approval_id: Annotated[uuid.UUID, typer.Argument(help="The request's id.")],
    user: UserOption,
    password_stdin: PasswordStdin = False,
    home: DirOption = None,
) -> None:
    """Run your approved search, once: an ordinary query on your quota."""
    with _as_user(home, user, password_stdin) as (services, person):
        answer = services.search_approvals.run(person, approval_id)
    print_answer(answer)
