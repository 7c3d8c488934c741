"""`privplate compliance`: the spot-check queue from the command line, on the same service
functions as the API's /compliance/reviews routes. Never a plate: none is stored."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from privplate.cli.app import DirOption, console, make_app
from privplate.cli.server import PasswordStdin, _password
from privplate.deployment import Deployment
from privplate.errors import InvalidRequest
from privplate.identity import accounts
from privplate.policy.review import (
    DrawReason,
    ReviewItem,
    SubjectKind,
    Verdict,
    list_reviews,
    record_verdict,
    review_item,
)

app = make_app("For compliance officers: the spot-check queue of drawn searches and entries.")


@app.command("reviews")
def reviews(
    open_only: Annotated[bool, typer.Option("--open", help="Only items without a verdict.")] = (
        False
    ),
    reason: Annotated[DrawReason | None, typer.Option(help="Only drawn this way.")] = None,
    kind: Annotated[SubjectKind | None, typer.Option(help="Only searches, or entries.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    home: DirOption = None,
) -> None:
    """List the spot-check queue: open items first (oldest on top), then reviewed ones."""
    with Deployment.open(home) as dep:
        found = list_reviews(db=dep.db, open_only=open_only, reason=reason, kind=kind, limit=limit)
    if not found:
        console.print("no spot checks")
        return
    for r in found:
        # One line per item, soft-wrapped, so a narrow terminal never cuts an id short.
        near = f" (near: {', '.join(r.terms)})" if r.terms else ""
        verdict = f"verdict {r.verdict.value} by {r.reviewer}" if r.verdict else "open"
        console.print(
            f"{r.id}  {r.kind.value}  drawn {r.reason.value}{near} at "
            f"{r.drawn_at.isoformat(timespec='seconds')}  requester {r.requester}  {verdict}",
            soft_wrap=True,
            markup=False,
        )


def _show(item: ReviewItem) -> None:
    r = item.review
    lines = [
        f"spot check {r.id}: {r.kind.value} {r.subject_id}, drawn {r.reason.value} at "
        f"{r.drawn_at.isoformat(timespec='seconds')}"
        + (f" (near: {', '.join(r.terms)})" if r.terms else ""),
    ]
    if item.search is not None:
        s = item.search
        lines += [
            f"  requester     {s.requester}",
            f"  searched at   {s.created_at.isoformat(timespec='seconds')}",
            f"  purpose       {s.purpose}",
            f"  case number   {s.case_number}",
            f"  justification {s.justification}",
            f"  window        {s.window_start.isoformat()} to {s.window_end.isoformat()}",
            f"  outcome       {s.outcome}, {s.match_count} matching reads",
        ]
    elif item.hotlist_entry is not None:
        e = item.hotlist_entry
        lines += [
            f"  hotlist       {e.hotlist}",
            f"  added by      {e.created_by} at {e.created_at.isoformat(timespec='seconds')}",
            f"  reason        {e.reason}",
            f"  case number   {e.case_number}",
            f"  expires       {e.expires_at.isoformat(timespec='seconds')}"
            + (f", removed {e.removed_at.isoformat(timespec='seconds')}" if e.removed_at else ""),
        ]
    else:
        lines.append("  (retention has deleted the record since; the draw's audit entry names it)")
    if r.verdict is not None and r.reviewed_at is not None:
        lines.append(
            f"  verdict       {r.verdict.value} by {r.reviewer} at "
            f"{r.reviewed_at.isoformat(timespec='seconds')}: {r.note}"
        )
    for line in lines:
        console.print(line, markup=False)


@app.command("review")
def review(
    review_id: Annotated[uuid.UUID, typer.Argument(help="The spot check's id.")],
    verdict: Annotated[
        Verdict | None, typer.Option(help="Record this verdict (once; needs --user and --note).")
    ] = None,
    note: Annotated[str, typer.Option(help="Why: the officer's note, kept on the record.")] = "",
    user: Annotated[
        str | None, typer.Option("--user", help="Compliance officer (asks a password).")
    ] = None,
    password_stdin: PasswordStdin = False,
    home: DirOption = None,
) -> None:
    """Show one spot check with its search or entry; with --verdict, record the verdict."""
    with Deployment.open(home) as dep:
        if verdict is None:
            _show(review_item(db=dep.db, review_id=review_id))
            return
        if user is None:
            raise InvalidRequest("a verdict is recorded by a compliance officer: give --user NAME")
        password = _password(password_stdin, confirm=False)
        officer, token, _ = accounts.login(
            db=dep.db, audit=dep.audit, name=user, password=password, hours=1
        )
        try:
            info = record_verdict(
                db=dep.db,
                audit=dep.audit,
                review_id=review_id,
                reviewer=officer,
                verdict=verdict,
                note=note,
            )
        finally:
            accounts.logout(db=dep.db, audit=dep.audit, user=officer, token=token)
    console.print(f"spot check {info.id}: verdict {verdict.value} recorded", markup=False)
