"""The edge side of enrolment (`privplate edge enrol`): make the device key here, register it
with a one-time code, and keep what the server answered.

The key is generated on this box and never leaves it: it is written (mode 0600, the format and
place `edge run` reads: ``edge.device_key_file``) as a pending file first and moved into place
only once the server has registered it, so a refused code leaves nothing behind. The request
is signed with the new key (privplate.devices.protocol), through the uplink's own HTTP client:
an edge install needs nothing of the server extra.

What the server answered goes into ``enrolment.json`` in the edge's directory (mode 0600),
owned by this module::

    {"format": "privplate-edge-enrolment", "version": 1,
     "device_id": ..., "name": ..., "cameras": [...], "server_url": ...,
     "server_key": "<origin>+<hash>+<base64>", "enrolled_at": ...,
     "settings": {"edge": {"server_url": ...}, "plates": {"fold_confusables": ..., ...}}}

``settings`` is read by privplate.settings below privplate.toml and PRIVPLATE_*, so `privplate
edge run` finds the server (and folds plates as it does) with no further configuration.
``server_key`` is the server's audit log key (its checkpoints' signer), pinned here: given
``--server-key`` (what `privplate devices enrol-code` printed), enrolment fails when the server
answers with another key. Naming a key is not holding it, so before anything is kept the server
must also prove it holds the key: its first epoch key answer, signed with it over this
device's fresh nonce (privplate/devices/epoch_answer.py), must verify.

What the pin is for, afterwards: whoever hands the edge its epoch key could invert its tokens
by trying every plate. `edge run` therefore takes an epoch key, and uploads batches, only from
a server that proves it holds the pinned key (:func:`pinned_server_key`, checked in
privplate/edge/uplink.py, ``ServerIdentity``), whatever ``edge.server_url`` says now: an edge
enrolled with one server and pointed at another (a wrong URL, a hijacked name, another
deployment) refuses, and its reads wait in the spool. ``edge.server_key`` overrides the pin
(a device key registered by hand, or a server whose audit key was replaced).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from privplate.audit.note import NoteError, NoteVerifier
from privplate.devices.enrolment import ENROL_PATH
from privplate.devices.protocol import DeviceKey
from privplate.edge.uplink import DeviceClient, ServerIdentity, UplinkError
from privplate.errors import ConfigError, PrivplateError
from privplate.settings import ENROLMENT_FILENAME, Settings
from privplate.store.cameras import CAMERA_ID
from privplate.tokens.kek import write_private_file

FORMAT = "privplate-edge-enrolment"


class EnrolmentFailed(PrivplateError):
    """The server refused the enrolment, or its answer cannot be used; nothing was kept."""

    exit_code = 77


@dataclass(frozen=True)
class Enrolment:
    device_id: str
    name: str
    cameras: tuple[str, ...]
    server_url: str
    server_key: str
    enrolled_at: datetime
    path: Path


def default_device_id() -> str:
    """``edge-`` and this host's name, as a device id (a-z, 0-9, '.', '_', '-')."""
    host = re.sub(r"[^a-z0-9._-]+", "-", socket.gethostname().lower()).strip("-.")
    return f"edge-{host}"[:64].rstrip("-.") if host else "edge-1"


def enrolment_path(settings: Settings) -> Path:
    return settings.home / ENROLMENT_FILENAME


def read_enrolment(settings: Settings) -> Enrolment | None:
    """This edge's enrolment, if it was enrolled (for `edge run` to pick its cameras)."""
    path = enrolment_path(settings)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError("not an enrolment file")
        return Enrolment(
            str(data["device_id"]),
            str(data.get("name", "")),
            tuple(str(c) for c in data["cameras"]),
            str(data["server_url"]),
            str(data["server_key"]),
            datetime.fromisoformat(data["enrolled_at"]),
            path,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(
            f"{path} is not an enrolment file privplate wrote; remove it and enrol again "
            "(`privplate edge enrol --force`)"
        ) from None


def pinned_server_key(settings: Settings) -> NoteVerifier | None:
    """The server key this edge requires on its epoch keys: ``edge.server_key`` if set, else
    the one pinned at enrolment (whatever ``edge.server_url`` says now), else None."""
    if settings.edge.server_key:
        try:
            return NoteVerifier.parse(settings.edge.server_key)
        except (NoteError, ValueError):
            raise ConfigError(
                "edge.server_key is not a note verifier key (name+hash+base64, as `privplate "
                "audit public-key` prints it on the server)"
            ) from None
    enrolment = read_enrolment(settings)
    if enrolment is None:
        return None
    try:
        return NoteVerifier.parse(enrolment.server_key)
    except (NoteError, ValueError):
        raise ConfigError(
            f"{enrolment.path} pins no usable server key; enrol again (--force)"
        ) from None


def enrol(
    settings: Settings,
    *,
    server_url: str,
    code: str,
    device_id: str,
    name: str = "",
    server_key: str | None = None,
    force: bool = False,
) -> Enrolment:
    """Generate the device key, enrol it with ``code`` and keep the answer (see the module)."""
    from privplate.edge.runtime import write_device_key  # noqa: PLC0415 - the one key format

    if not CAMERA_ID.fullmatch(device_id):
        raise ConfigError(
            "a device id is 1-64 characters of a-z, 0-9, '.', '_' or '-' (give --device-id)"
        )
    if not server_url.startswith(("http://", "https://")):
        raise ConfigError("--server is the server's URL, http(s)://host[:port]")
    expected = _verifier(server_key, "--server-key") if server_key else None
    key_path = settings.path(settings.edge.device_key_file)
    if key_path.exists() and not force:
        raise ConfigError(
            f"{key_path} already holds a device key; this box is enrolled or has a key of its "
            "own. Give --force to replace it (the old key's device should then be revoked on "
            "the server: privplate devices revoke)"
        )
    pending = key_path.with_name(key_path.name + ".enrolling")
    pending.unlink(missing_ok=True)  # a run that died half-way
    key = write_device_key(pending, device_id)
    try:
        answer = _request(settings, server_url, key, code=code, name=name)
        enrolment = _check(answer, key=key, server_url=server_url, expected=expected)
        _prove(settings, server_url, key, enrolment)
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    os.replace(pending, key_path)
    path = enrolment_path(settings)
    record = {
        "format": FORMAT,
        "version": 1,
        "device_id": enrolment.device_id,
        "name": enrolment.name,
        "cameras": list(enrolment.cameras),
        "server_url": enrolment.server_url,
        "server_key": enrolment.server_key,
        "enrolled_at": enrolment.enrolled_at.isoformat(),
        "settings": {
            "edge": {"server_url": enrolment.server_url},
            "plates": answer["folding"],
        },
    }
    write_private_file(path, (json.dumps(record, indent=2) + "\n").encode())
    return dataclasses.replace(enrolment, path=path)


def _verifier(vkey: str, what: str) -> NoteVerifier:
    try:
        return NoteVerifier.parse(vkey.strip())
    except (NoteError, ValueError):
        raise EnrolmentFailed(
            f"{what} is not a note verifier key (name+hash+base64, as `privplate devices "
            "enrol-code` and `privplate audit public-key` print it)"
        ) from None


def _request(settings: Settings, server_url: str, key: DeviceKey, *, code: str, name: str) -> Any:
    body = json.dumps(
        {
            "code": code,
            "device_id": key.device_id,
            "name": name,
            "public_key": key.public_key.hex(),
        }
    ).encode()
    client = DeviceClient(server_url, key, timeout=settings.edge.uplink_timeout_seconds)
    try:
        return client.request("POST", ENROL_PATH, body)
    except UplinkError as exc:
        raise EnrolmentFailed(f"enrolment refused, nothing was kept: {exc}") from None


def _prove(settings: Settings, server_url: str, key: DeviceKey, enrolment: Enrolment) -> None:
    """The server holds the key it named: its epoch key answer to the new device is signed
    with it (an impostor can copy the server's public key, not its signatures)."""
    client = DeviceClient(server_url, key, timeout=settings.edge.uplink_timeout_seconds)
    identity = ServerIdentity(client, NoteVerifier.parse(enrolment.server_key))
    try:
        identity.fetch_epoch()
    except UplinkError as exc:
        raise EnrolmentFailed(
            f"the server named key {enrolment.server_key} but did not prove it holds it "
            f"({exc}). Nothing was kept; revoke device {enrolment.device_id!r} on the server "
            "if it was registered there"
        ) from None


def _check(
    answer: Any, *, key: DeviceKey, server_url: str, expected: NoteVerifier | None
) -> Enrolment:
    try:
        cameras = tuple(str(c) for c in answer["cameras"])
        folding = answer["folding"]
        if not isinstance(folding, dict) or not cameras:
            raise ValueError("no cameras or plate settings")
        got = Enrolment(
            str(answer["device_id"]),
            str(answer.get("name", "")),
            cameras,
            server_url.rstrip("/"),
            str(answer["server_key"]),
            datetime.fromisoformat(str(answer["enrolled_at"])),
            Path(),
        )
    except (KeyError, TypeError, ValueError):
        raise EnrolmentFailed(
            "the server's answer is not an enrolment (is --server a privplate server?)"
        ) from None
    if got.device_id != key.device_id:
        raise EnrolmentFailed("the server registered another device id than the one asked for")
    pinned = _verifier(got.server_key, "the server's key")
    if expected is not None and pinned.vkey() != expected.vkey():
        raise EnrolmentFailed(
            f"the server answered with key {pinned.vkey()}, not the --server-key given: this is "
            f"not the server that made the code. Nothing was kept; revoke device "
            f"{got.device_id!r} on the right server if it was registered there"
        )
    return got
