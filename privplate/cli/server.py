"""`privplate serve`, `users`, `devices`, `hotlist` and `query`."""

from __future__ import annotations

import copy
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from privplate.cli.app import DirOption, console, make_app
from privplate.deployment import Deployment
from privplate.devices import enrolment, registry
from privplate.errors import InvalidRequest
from privplate.hotlists import HotlistSource
from privplate.hotlists.csv_import import ImportOptions, parse_entries
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.jurisdiction import Purpose
from privplate.policy.approvals import PendingSearch
from privplate.policy.queries import QueryAnswer, QueryRequest
from privplate.services import Services

users_app = make_app("People and service accounts: add, list, disable, API keys.")
devices_app = make_app("Edge devices: enrolment codes, register with a public key, list, revoke.")
hotlist_app = make_app("Hotlists: create, import CSV, list.")

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first stdin line.")
]


def _password(from_stdin: bool, *, confirm: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise InvalidRequest("no password on stdin")
        return line
    value: str = typer.prompt("password", hide_input=True, confirmation_prompt=confirm)
    return value


def serve(
    home: DirOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (server.port).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes on this port (uvicorn restarts one that dies). More than "
            "one needs PostgreSQL: alerts reach every worker's live streams by LISTEN/NOTIFY.",
        ),
    ] = 1,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error: the server's and privplate's.")
    ] = "info",
) -> None:
    """Run the API server and web console (uvicorn) with the retention and checkpoint jobs
    (one process leads them at a time)."""
    import uvicorn  # noqa: PLC0415 - the server extra

    from privplate.settings import load_settings  # noqa: PLC0415

    level = log_level.lower()
    if level not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter("debug, info, warning or error", param_hint="--log-level")
    settings = load_settings(home)
    if workers > 1 and not settings.resolved_database_url.startswith("postgresql"):
        # SQLite has one writer, and the workers' streams would only find other workers'
        # alerts by polling: several processes on one box buy nothing there.
        raise typer.BadParameter(
            "several workers need PostgreSQL (database_url); SQLite serves one process",
            param_hint="--workers",
        )
    # Each worker process builds the app from the same deployment directory.
    os.environ["PRIVPLATE_HOME"] = str(settings.home)
    uvicorn.run(
        "privplate.api.app:app_for_home",
        factory=True,
        workers=workers,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=level,
        log_config=_log_config(level),
        # The access log shows method and path only; no route takes a plate in its URL.
        access_log=True,
        server_header=False,
    )


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging plus privplate's own loggers (purges, webhooks, leadership) on
    stderr, applied in every worker; no message of theirs holds a plate (tests/console scan
    the log of a whole browser run)."""
    from uvicorn.config import LOGGING_CONFIG  # noqa: PLC0415 - the server extra

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["privplate"] = {"format": "%(levelname)s: %(name)s: %(message)s"}
    config["handlers"]["privplate"] = {
        "class": "logging.StreamHandler",
        "formatter": "privplate",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["privplate"] = {
        "handlers": ["privplate"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def migrate(home: DirOption = None) -> None:
    """Bring the database schema to this version's newest revision (keys and settings are
    left alone): the job a city runs before starting new server versions, which wait
    (/readyz 503) until it has."""
    from privplate.settings import load_settings  # noqa: PLC0415
    from privplate.store.database import Database  # noqa: PLC0415

    settings = load_settings(home)
    db = Database(settings.resolved_database_url)
    try:
        before, head = db.schema_revision()
        if before == head:
            console.print(f"database schema already at {head}")
            return
        db.migrate()
    finally:
        db.dispose()
    console.print(f"database schema migrated from {before or 'nothing'} to {head}")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name (a-z, 0-9, . _ @ -).")],
    role: Annotated[Role, typer.Option("--role", help="admin, operator, investigator, ...")],
    agency: Annotated[str, typer.Option(help="Agency the person works for.")] = "",
    person: Annotated[
        str | None,
        typer.Option(
            "--person",
            help="Another account of someone who has one: their person id (the name of their "
            "first account, see users list). Omit for someone new.",
        ),
    ] = None,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="Service account: API keys only.")
    ] = False,
    password_stdin: PasswordStdin = False,
    home: DirOption = None,
) -> None:
    """Add a user; asks for a password (12+ characters) unless --no-password."""
    password = None if no_password else _password(password_stdin, confirm=True)
    with Deployment.open(home) as dep:
        user = accounts.create_user(
            db=dep.db,
            audit=dep.audit,
            actor=dep.actor,
            name=name,
            role=role,
            password=password,
            agency=agency,
            person=person,
        )
    console.print(f"user [bold]{user.name}[/] added as {user.role.value}")
    if user.person != user.name:
        console.print(f"another account of person [bold]{user.person}[/] (audited)")


@users_app.command("list")
def users_list(home: DirOption = None) -> None:
    """List users and their roles."""
    with Deployment.open(home) as dep:
        users = accounts.list_users(db=dep.db)
    table = Table("name", "person", "role", "agency", "created", "disabled")
    for u in users:
        table.add_row(
            u.name,
            u.person,
            u.role.value,
            u.agency,
            u.created_at.isoformat(timespec="seconds"),
            "yes" if u.disabled else "",
        )
    console.print(table)


@users_app.command("disable")
def users_disable(name: str, home: DirOption = None) -> None:
    """Disable a user, ending their sessions and API keys."""
    with Deployment.open(home) as dep:
        accounts.disable_user(db=dep.db, audit=dep.audit, actor=dep.actor, name=name)
    console.print(f"user [bold]{name}[/] disabled")


@users_app.command("api-key")
def users_api_key(
    name: str,
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
    home: DirOption = None,
) -> None:
    """Create an API key for a (service) account; the key is printed once."""
    with Deployment.open(home) as dep:
        key_id, key = accounts.create_api_key(
            db=dep.db, audit=dep.audit, actor=dep.actor, name=name, label=label
        )
    console.print(f"API key {key_id} for {name} (shown once):")
    console.print(key, soft_wrap=True)


@devices_app.command("add")
def devices_add(
    device_id: Annotated[str, typer.Argument(help="Device id, e.g. edge-gate-north.")],
    public_key: Annotated[str, typer.Option(help="Ed25519 public key, 64 hex digits.")],
    camera: Annotated[list[str], typer.Option("--camera", help="Camera it reports for.")],
    name: Annotated[str, typer.Option(help="Human-readable name.")] = "",
    home: DirOption = None,
) -> None:
    """Register an edge device and the cameras it may report for."""
    try:
        key = bytes.fromhex(public_key)
    except ValueError:
        raise InvalidRequest("--public-key must be 64 hex digits") from None
    with Deployment.open(home) as dep:
        device = registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor=dep.actor,
            device_id=device_id,
            public_key=key,
            cameras=camera,
            name=name,
        )
    console.print(f"device [bold]{device.id}[/] registered for {', '.join(device.cameras)}")


@devices_app.command("enrol-code")
def devices_enrol_code(
    camera: Annotated[
        list[str], typer.Option("--camera", help="Camera the device will report for (repeat).")
    ],
    name: Annotated[str, typer.Option(help="Human-readable name of the device.")] = "",
    minutes: Annotated[
        int,
        typer.Option(min=1, max=enrolment.MAX_MINUTES, help="How long the code can be used."),
    ] = enrolment.DEFAULT_MINUTES,
    home: DirOption = None,
) -> None:
    """Make a one-time code that enrols one edge device for these cameras (`privplate edge
    enrol --code` on the device); the code is printed once and stored only as a keyed hash."""
    from privplate.server_secret import read_server_secret  # noqa: PLC0415

    with Deployment.open(home) as dep:
        issued = enrolment.create_code(
            db=dep.db,
            audit=dep.audit,
            secret=read_server_secret(dep.settings.server_secret_path),
            actor=dep.actor,
            cameras=camera,
            name=name,
            minutes=minutes,
        )
        server_key = dep.audit.signer.note_verifier.vkey()
    until = issued.expires_at.isoformat(timespec="seconds")
    console.print(
        f"enrolment code {issued.id} for {', '.join(issued.cameras)}, usable once until {until} "
        "(shown once):"
    )
    console.print(f"  {issued.code}", soft_wrap=True)
    console.print(f"server key: {server_key}", soft_wrap=True)
    console.print(
        "on the device: privplate edge enrol --server URL --code CODE [--server-key KEY]",
        soft_wrap=True,
    )


@devices_app.command("list")
def devices_list(home: DirOption = None) -> None:
    """List edge devices."""
    with Deployment.open(home) as dep:
        devices = registry.list_devices(db=dep.db)
    table = Table("id", "cameras", "public key", "revoked")
    for d in devices:
        table.add_row(
            d.id, ", ".join(d.cameras), d.public_key.hex()[:16] + "...", "yes" if d.revoked else ""
        )
    console.print(table)


@devices_app.command("revoke")
def devices_revoke(device_id: str, home: DirOption = None) -> None:
    """Revoke a device: its requests are refused from now on."""
    with Deployment.open(home) as dep:
        registry.revoke_device(db=dep.db, audit=dep.audit, actor=dep.actor, device_id=device_id)
    console.print(f"device [bold]{device_id}[/] revoked")


@hotlist_app.command("create")
def hotlist_create(
    name: str,
    source: Annotated[HotlistSource, typer.Option(help="Where the list comes from.")],
    description: Annotated[str, typer.Option(help="What the list is for.")] = "",
    home: DirOption = None,
) -> None:
    """Create a hotlist."""
    with Deployment.open(home) as dep, Services(dep) as services:
        services.hotlists.create(actor=dep.actor, name=name, source=source, description=description)
    console.print(f"hotlist [bold]{name}[/] created")


@hotlist_app.command("import")
def hotlist_import(
    file: Annotated[Path, typer.Argument(help="CSV: plate,reason,case_number[,expires_at].")],
    list_name: Annotated[str, typer.Option("--list", help="Hotlist name.")],
    where: Annotated[
        str | None, typer.Option(help="Only rows whose COLUMN has VALUE (COLUMN=VALUE).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N such rows.")] = None,
    reason: Annotated[str, typer.Option(help="Reason for rows that have none.")] = "",
    case: Annotated[str, typer.Option("--case", help="Case number for rows without one.")] = "",
    home: DirOption = None,
) -> None:
    """Import entries from a CSV file (all or nothing). Plates are never printed."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read {file}: {type(exc).__name__}") from None
    options = ImportOptions(
        where=ImportOptions.parse_where(where) if where is not None else None,
        limit=limit,
        reason=reason,
        case_number=case,
    )
    entries = parse_entries(text, options)
    with Deployment.open(home) as dep, Services(dep) as services:
        added = services.hotlists.add_entries(actor=dep.actor, hotlist=list_name, entries=entries)
    console.print(f"{len(added)} entries added to hotlist [bold]{list_name}[/]")


@hotlist_app.command("list")
def hotlist_list(home: DirOption = None) -> None:
    """List hotlists with their live entry counts."""
    with Deployment.open(home) as dep, Services(dep) as services:
        lists = services.hotlists.all()
    table = Table("name", "source", "live entries", "cap", "created by")
    for h in lists:
        table.add_row(h.name, h.source.value, str(h.live_entries), str(h.max_entries), h.created_by)
    console.print(table)


def query(
    plate: Annotated[str, typer.Option("--plate", help="The plate to look for.")],
    purpose: Annotated[Purpose, typer.Option("--purpose", help="Why (an allowed purpose).")],
    case: Annotated[str, typer.Option("--case", help="Case number.")],
    why: Annotated[str, typer.Option("--why", help="Justification (kept on the record).")],
    user: Annotated[str, typer.Option("--user", help="Investigator asking (asks a password).")],
    days: Annotated[int, typer.Option(min=1, help="Look back this many days.")] = 7,
    password_stdin: PasswordStdin = False,
    home: DirOption = None,
) -> None:
    """Ask whether a plate was seen: the only search there is (filed for a second person's
    approval when its purpose needs one: queries.approval_required)."""
    password = _password(password_stdin, confirm=False)
    with Deployment.open(home) as dep, Services(dep) as services:
        person, token, _ = accounts.login(
            db=dep.db, audit=dep.audit, name=user, password=password, hours=1
        )
        now = datetime.now(UTC)
        try:
            answer = services.search_approvals.submit(
                person,
                QueryRequest(plate, now - timedelta(days=days), now, purpose, case, why),
            )
        finally:
            accounts.logout(db=dep.db, audit=dep.audit, user=person, token=token)
    if isinstance(answer, PendingSearch):
        console.print(
            f"waiting for approval (id {answer.id}): a compliance officer decides by "
            f"{answer.expires_at.isoformat(timespec='seconds')}; then run it with "
            f"`privplate approvals run {answer.id} --user {person.name}`"
        )
        return
    print_answer(answer)


def print_answer(answer: QueryAnswer) -> None:
    """A search's answer on the terminal: the same shape whether or not anything matched."""
    console.print(f"query {answer.query_id}: {len(answer.matches)} matching reads")
    table = Table("observed at", "camera", "confidence", "evidence", "alternate")
    for m in answer.matches:
        table.add_row(
            m.observed_at.isoformat(timespec="seconds"),
            m.camera_id,
            f"{m.confidence:.2f}",
            str(m.evidence_id or ""),
            "yes" if m.via_alternate else "",
        )
    console.print(table)
