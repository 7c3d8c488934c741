"""`privplate keys` (ceremony, re-share), `privplate unseal` (request, withdraw, fetch) and
`privplate officer` (approve, deny): the two-person unseal from the command line."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from privplate.ceremony.sharefile import read_share_file
from privplate.cli.app import DirOption, console, make_app
from privplate.client import DEFAULT_SERVER, SERVER_URL_ENV, ApiClient, server_url
from privplate.deployment import Deployment
from privplate.errors import InvalidRequest, UnsealRefused
from privplate.threshold.dleq import prove_partial
from privplate.unseal.workflow import request_context

keys_app = make_app("Evidence key ceremonies: deal, re-share and rotate the evidence key.")
unseal_app = make_app("Unseal requests: ask for an evidence image, fetch it once released.")
officer_app = make_app("For compliance officers: approve or deny unseal requests with your share.")

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server", help=f"Server URL (default ${SERVER_URL_ENV}, else {DEFAULT_SERVER})."
    ),
]
UserOption = Annotated[str, typer.Option("--user", help="Your privplate user name.")]
SecretsStdin = Annotated[
    bool,
    typer.Option("--secrets-stdin", help="Read password/passphrases from stdin, one per line."),
]


def _secret(prompt: str, from_stdin: bool, *, confirm: bool = False) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise InvalidRequest(f"no {prompt} on stdin")
        return line
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value


@contextmanager
def _signed_in(server: str | None, user: str, secrets_stdin: bool) -> Iterator[ApiClient]:
    """A session on the server as ``user`` (password from stdin or a prompt), closed after."""
    password = _secret("password", secrets_stdin)
    with ApiClient(server_url(server)) as api:
        api.login(user, password)
        yield api


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise InvalidRequest("--officers lists the compliance officers, comma-separated")
    return names


@keys_app.command("ceremony")
def ceremony(
    officers: Annotated[str, typer.Option("--officers", help="Compliance officers, a,b,c.")],
    threshold: Annotated[int, typer.Option("--threshold", help="Officers needed (>= 2).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the share files.")],
    secrets_stdin: SecretsStdin = False,
    home: DirOption = None,
) -> None:
    """Deal a new evidence key to N officers (T needed); a rotation when a key exists."""
    # Imported here, so that no other command (``serve`` above all) loads the ceremony code.
    from privplate.ceremony.ceremony import hold_ceremony  # noqa: PLC0415

    names = _names(officers)
    pairs = [(n, _secret(f"passphrase for {n}", secrets_stdin, confirm=True)) for n in names]
    with Deployment.open(home) as dep:
        result = hold_ceremony(dep, officers=pairs, threshold=threshold, out_dir=out)
    console.print(f"evidence public key X = {result.public_key.hex()} (written to privplate.toml)")
    console.print(f"{result.threshold} of {len(names)} officers open an item; share files:")
    for name, path in result.files.items():
        console.print(f"  {name}: {path}  (give it to {name} alone, then delete this copy)")


@keys_app.command("reshare")
def reshare_command(
    share: Annotated[list[Path], typer.Option("--share", help="An old share file (T of them).")],
    officers: Annotated[str, typer.Option("--officers", help="New officers, a,b,c.")],
    threshold: Annotated[int, typer.Option("--threshold", help="Officers needed (>= 2).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the new share files.")],
    secrets_stdin: SecretsStdin = False,
    home: DirOption = None,
) -> None:
    """Deal the same evidence key to a new set of officers (e.g. one left)."""
    from privplate.ceremony.ceremony import reshare  # noqa: PLC0415

    old = [(read_share_file(p), "") for p in share]
    old = [(f, _secret(f"passphrase of {f.officer}'s old share", secrets_stdin)) for f, _ in old]
    names = _names(officers)
    pairs = [(n, _secret(f"passphrase for {n}", secrets_stdin, confirm=True)) for n in names]
    with Deployment.open(home) as dep:
        result = reshare(dep, old_shares=old, officers=pairs, threshold=threshold, out_dir=out)
    console.print(f"re-shared X = {result.public_key.hex()}; old shares no longer count")
    for name, path in result.files.items():
        console.print(f"  {name}: {path}")


@unseal_app.command("request")
def request(
    evidence_id: Annotated[uuid.UUID, typer.Argument(help="Evidence id (from a query match).")],
    case: Annotated[str, typer.Option("--case", help="Case number.")],
    why: Annotated[str, typer.Option("--why", help="Justification (on the record).")],
    user: UserOption,
    server: ServerOption = None,
    secrets_stdin: SecretsStdin = False,
) -> None:
    """File an unseal request (investigators)."""
    with _signed_in(server, user, secrets_stdin) as api:
        answer = api.request(
            "POST",
            "/unseal/requests",
            json={"evidence_id": str(evidence_id), "case_number": case, "justification": why},
        ).json()
    console.print(
        f"unseal request {answer['id']} filed; {answer['threshold']} compliance officers must "
        "approve it"
    )


@unseal_app.command("withdraw")
def withdraw(
    request_id: Annotated[uuid.UUID, typer.Argument(help="Your pending request.")],
    user: UserOption,
    server: ServerOption = None,
    secrets_stdin: SecretsStdin = False,
) -> None:
    """Withdraw your own pending unseal request; this ends it (e.g. to file a corrected one)."""
    with _signed_in(server, user, secrets_stdin) as api:
        api.request("POST", f"/unseal/requests/{request_id}/withdraw")
    console.print(f"request {request_id} withdrawn")


@unseal_app.command("fetch")
def fetch(
    request_id: Annotated[uuid.UUID, typer.Argument(help="Your released request.")],
    out: Annotated[Path, typer.Option("--out", help="Plate crop JPEG; the frame goes next to it.")],
    user: UserOption,
    server: ServerOption = None,
    secrets_stdin: SecretsStdin = False,
) -> None:
    """Fetch a released image (watermarked with the request id and time)."""
    with _signed_in(server, user, secrets_stdin) as api:
        crop = api.request("GET", f"/unseal/requests/{request_id}/image?part=crop").content
        frame = api.request("GET", f"/unseal/requests/{request_id}/image?part=frame").content
    frame_path = out.with_name(out.stem + ".frame.jpg")
    out.write_bytes(crop)
    frame_path.write_bytes(frame)
    out.chmod(0o600)
    frame_path.chmod(0o600)
    console.print(f"wrote {out} (plate) and {frame_path} (frame)")


@officer_app.command("approve")
def approve(
    request_id: Annotated[uuid.UUID, typer.Argument(help="The unseal request.")],
    share: Annotated[Path, typer.Option("--share", help="Your share file.")],
    user: UserOption,
    server: ServerOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    secrets_stdin: SecretsStdin = False,
) -> None:
    """Approve with your share: the partial decryption is computed here; the share stays here."""
    share_file = read_share_file(share)
    with _signed_in(server, user, secrets_stdin) as api:
        req = api.request("GET", f"/unseal/requests/{request_id}").json()
        console.print(
            f"request {req['id']} by [bold]{req['requested_by']}[/]\n"
            f"  evidence {req['evidence_id']}, case {req['case_number']}\n"
            f"  justification: {req['justification']}\n"
            f"  status {req['status']}, {req['approvals']} of {req['threshold']} approvals"
        )
        if req["status"] != "pending":
            raise UnsealRefused(f"this request is {req['status']}")
        if req["public_key"] != share_file.public_key.hex() or req["share_set_id"] != str(
            share_file.ceremony_id
        ):
            raise UnsealRefused("your share file belongs to another key ceremony")
        if not yes and not typer.confirm("approve this request?"):
            raise typer.Exit(1)
        share_value = share_file.open(_secret("share passphrase", secrets_stdin))
        context = request_context(
            uuid.UUID(req["id"]), uuid.UUID(req["evidence_id"]), uuid.UUID(req["share_set_id"])
        )
        partial, proof = prove_partial(share_value.value, bytes.fromhex(req["ephemeral"]), context)
        answer = api.request(
            "POST",
            f"/unseal/requests/{request_id}/approvals",
            json={
                "share_index": share_value.index,
                "partial": partial.hex(),
                "proof": proof.to_bytes().hex(),
            },
        ).json()
    console.print(f"approved; request is {answer['status']} ({answer['approvals']} approvals)")


@officer_app.command("deny")
def deny(
    request_id: Annotated[uuid.UUID, typer.Argument(help="The unseal request.")],
    why: Annotated[str, typer.Option("--why", help="Reason (on the record).")],
    user: UserOption,
    server: ServerOption = None,
    secrets_stdin: SecretsStdin = False,
) -> None:
    """Deny an unseal request; this ends it."""
    with _signed_in(server, user, secrets_stdin) as api:
        api.request("POST", f"/unseal/requests/{request_id}/deny", json={"why": why})
    console.print(f"request {request_id} denied")
