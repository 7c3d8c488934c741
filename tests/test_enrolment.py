"""Enrolling an edge device with a one-time code (privplate.devices.enrolment and
privplate.edge.enrolment), against a real `privplate serve`: the CLI on both sides, the code
used once (also by two server processes at once on PostgreSQL), refused codes audited and
throttled per address, only a keyed hash of the code in the database, and an enrolled box
reporting only for its cameras."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from privplate.cli.main import app
from privplate.deployment import Deployment
from privplate.devices import enrolment
from privplate.devices.batches import IngestBatch
from privplate.devices.protocol import DeviceKey
from privplate.edge.enrolment import EnrolmentFailed, read_enrolment
from privplate.edge.enrolment import enrol as edge_enrol
from privplate.edge.runtime import read_device_key
from privplate.edge.spool import Spool
from privplate.edge.uplink import DeviceClient, ServerKeys, UplinkError
from privplate.errors import InvalidRequest
from privplate.settings import load_settings
from privplate.store.enrolment_models import EnrolmentCode
from privplate.store.ingest import ReadIn, TokenIn
from privplate.store.models import Read
from privplate.store.server_models import Device, DeviceCamera
from privplate.tokens import canonical_plate, plate_token
from tests.cluster_support import servers
from tests.conftest import ON_POSTGRES
from tests.migration_support import assert_migration_matches_model
from tests.privacy import dump_database

runner = CliRunner()
CODE = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{5}(?:-[0-9A-HJKMNP-TV-Z]{5}){3}\b")
VKEY = re.compile(r"server key: (\S+)")
#: The edge's CLI with the server extra's modules made unimportable, as on an edge install.
EDGE_ONLY = (
    "import sys\n"
    "for name in ('fastapi', 'starlette', 'uvicorn', 'httpx', 'apscheduler'):\n"
    "    sys.modules[name] = None\n"
    "from privplate.cli.main import main\n"
    "sys.argv = ['privplate', *sys.argv[1:]]\n"
    "main()\n"
)


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def edge_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")}
    return subprocess.run(
        [sys.executable, "-c", EDGE_ONLY, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def make_code(home: Path, *cameras: str, minutes: int = 15, name: str = "") -> tuple[str, str]:
    args = ["devices", "enrol-code", "--minutes", str(minutes), "--dir", str(home)]
    for camera in cameras:
        args += ["--camera", camera]
    if name:
        args += ["--name", name]
    code, out = invoke(*args)
    assert code == 0, out
    found = CODE.findall(out)
    assert len(found) == 1, out
    vkey = VKEY.search(out)
    assert vkey is not None, out
    return found[0], vkey.group(1)


def audit_actions(home: Path) -> list[tuple[str, dict[str, object]]]:
    with Deployment.open(home) as dep:
        return [
            (e.action, dict(e.entry.details)) for e in dep.audit.entries() if e.entry is not None
        ]


def signed_enrol(url: str, key: DeviceKey, code: str) -> httpx.Response:
    body = json.dumps(
        {"code": code, "device_id": key.device_id, "public_key": key.public_key.hex()}
    ).encode()
    headers = key.sign_request("POST", enrolment.ENROL_PATH, body)
    headers["Content-Type"] = "application/json"
    return httpx.post(url + enrolment.ENROL_PATH, content=body, headers=headers, timeout=30)


def batch_for(client: DeviceClient, spool: Spool, camera: str, count: int = 2) -> bytes:
    """A signed-upload body as the edge makes it: tokens under the epoch key the server sealed
    to this device (fetched with the enrolled key)."""
    key = ServerKeys(client, spool).current_key()
    now = datetime.now(UTC)
    reads = [
        ReadIn(
            read_id=uuid.uuid4(),
            camera_id=camera,
            observed_at=now,
            epoch_id=key.epoch_id,
            tokens=[TokenIn(plate_token(key.key, canonical_plate(f"ENR{i}42")))],
            confidence=0.9,
        )
        for i in range(count)
    ]
    return IngestBatch.from_store(uuid.uuid4(), reads, []).model_dump_json().encode()


def check_box(box: Path, server: str, vkey: str) -> DeviceKey:
    """The key was made on the box, 0600, where and as `edge run` reads it; the enrolment
    beside it, and the settings `edge run` loads name the server."""
    settings = load_settings(box)
    key_path = settings.path(settings.edge.device_key_file)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert not list(key_path.parent.glob("*.enrolling"))
    key = read_device_key(key_path)
    assert key.device_id == "edge-north"
    enrolled = read_enrolment(settings)
    assert enrolled is not None
    assert stat.S_IMODE(enrolled.path.stat().st_mode) == 0o600
    assert enrolled.cameras == ("gate-1", "gate-2") and enrolled.server_key == vkey
    assert settings.edge.server_url == server  # `edge run` needs no privplate.toml
    assert key.seed.hex() not in enrolled.path.read_text()
    return key


def check_registered(server_home: Path, key: DeviceKey, vkey: str) -> None:
    """The server registered that public key for exactly the code's cameras, and the key the
    box pinned is the server's audit key."""
    with Deployment.open(server_home) as dep:
        with dep.db.read() as conn:
            device = conn.execute(select(Device).where(Device.id == "edge-north")).one()
            cameras = (
                conn.execute(
                    select(DeviceCamera.camera_id).where(DeviceCamera.device_id == "edge-north")
                )
                .scalars()
                .all()
            )
        assert bytes(device.public_key) == key.public_key and device.name == "North gate"
        assert sorted(cameras) == ["gate-1", "gate-2"]
        assert dep.audit.signer.note_verifier.vkey() == vkey


def race(urls: list[str], code: str, keys: list[DeviceKey]) -> list[int]:
    """Two enrolments with one code, one on each server, let go at the same moment."""
    start = threading.Barrier(len(urls))
    answers = [0] * len(urls)

    def one(i: int) -> None:
        start.wait()
        answers[i] = signed_enrol(urls[i], keys[i], code).status_code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


@pytest.fixture
def server_home(home: Path) -> Path:
    for camera in ("gate-1", "gate-2", "gate-3"):
        assert invoke("cameras", "add", camera, "--dir", str(home))[0] == 0
    return home


@pytest.fixture
def server(server_home: Path) -> Iterator[str]:
    with servers(server_home, 1, {"SERVER__ENROLMENT_MAX_FAILURES_PER_ADDRESS": "4"}) as urls:
        yield urls[0]


def test_enrol_code_then_edge_enrol_then_a_signed_batch_is_stored(
    server_home: Path, server: str, tmp_path: Path
) -> None:
    code, vkey = make_code(server_home, "gate-1", "gate-2", name="North gate")
    box = tmp_path / "edge-box"
    box.mkdir()
    done = edge_cli(
        "edge", "enrol", "--server", server, "--code", code.lower().replace("-", " "),
        "--device-id", "edge-north", "--server-key", vkey, "--dir", str(box),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "device edge-north enrolled" in done.stdout and "gate-1, gate-2" in done.stdout

    key = check_box(box, server, vkey)
    check_registered(server_home, key, vkey)
    settings = load_settings(box)
    key_path = settings.path(settings.edge.device_key_file)

    # The enrolled box sends a signed batch for its camera, and it is stored.
    client = DeviceClient(settings.edge.server_url, key)
    spool = Spool(tmp_path / "spool.db")
    try:
        answer = client.request("POST", "/ingest", batch_for(client, spool, "gate-1"))
        assert answer["inserted"] == 2
        # ... and only for its cameras: gate-3 exists, but this device may not report for it.
        with pytest.raises(UplinkError, match="403") as refused:
            client.request("POST", "/ingest", batch_for(client, spool, "gate-3"))
        assert refused.value.permanent
    finally:
        spool.close()
    with Deployment.open(server_home) as dep, dep.db.read() as conn:
        per_camera = dict(
            conn.execute(select(Read.camera_id, func.count()).group_by(Read.camera_id)).all()
        )
    assert per_camera == {"gate-1": 2}

    # The code was used: a second box is refused, keeps nothing, and the refusal is audited.
    other = tmp_path / "other-box"
    other.mkdir()
    again = edge_cli(
        "edge", "enrol", "--server", server, "--code", code, "--device-id", "edge-south",
        "--dir", str(other),
    )  # fmt: skip
    assert again.returncode != 0
    assert "already used" in again.stderr and "nothing was kept" in again.stderr
    assert not (other / "keys").exists() or not list((other / "keys").iterdir())
    assert not (other / "enrolment.json").exists()

    # Enrolling this box again without --force would replace its key: refused before asking.
    second, _ = make_code(server_home, "gate-3")
    kept = edge_cli(
        "edge", "enrol", "--server", server, "--code", second, "--device-id", "edge-north-2",
        "--dir", str(box),
    )  # fmt: skip
    assert kept.returncode == 78 and "--force" in kept.stderr
    assert read_device_key(key_path).seed == key.seed

    actions = audit_actions(server_home)
    created = [d for a, d in actions if a == "devices.enrolment_code_created"]
    assert created[0]["cameras"] == ["gate-1", "gate-2"] and created[0]["name"] == "North gate"
    enrolled_entries = [d for a, d in actions if a == "devices.enrolled"]
    assert enrolled_entries == [
        {"code": created[0]["code"], "device": "edge-north", "cameras": ["gate-1", "gate-2"]}
    ]
    refusals = [d["reason"] for a, d in actions if a == "devices.request_refused"]
    assert f"enrolment code {created[0]['code']} already used" in refusals
    # The code itself is nowhere on the record.
    symbols = enrolment.normalize(code)
    assert not any(symbols in json.dumps(d) or code in json.dumps(d) for _, d in actions)

    # Only a keyed hash of the code is in the database (SQLite files or a pg_dump).
    with Deployment.open(server_home) as dep:
        dumped = dump_database(dep.settings.resolved_database_url)
    for form in {code, symbols, code.lower(), symbols.lower(), *code.split("-")}:
        assert form.encode() not in dumped, form
        assert form.encode("utf-16-le") not in dumped, form


def test_expired_unknown_and_guessed_codes_are_refused_audited_and_throttled(
    server_home: Path, server: str, tmp_path: Path
) -> None:
    code, _ = make_code(server_home, "gate-1", minutes=1)
    with Deployment.open(server_home) as dep, dep.db.write() as conn:
        conn.execute(update(EnrolmentCode).values(expires_at=datetime.now(UTC) - timedelta(1)))
    # Through the edge's own client: a clear error, and nothing is kept on the box.
    settings = load_settings(tmp_path / "box")
    with pytest.raises(EnrolmentFailed, match=r"410.*expired"):
        edge_enrol(settings, server_url=server, code=code, device_id="edge-late")
    assert not (tmp_path / "box" / "keys" / "device.key").exists()
    assert read_enrolment(settings) is None

    # A malformed code is a typo, refused without counting (nothing to guess with it).
    for _ in range(6):
        answer = signed_enrol(server, DeviceKey.generate("edge-x"), "not a code")
        assert answer.status_code == 400 and "check it for typos" in answer.text
    # A wrong code answers 401 until the address's limit (4 refusals, the expired one counted)
    for _ in range(3):
        guess = enrolment.new_code()
        answer = signed_enrol(server, DeviceKey.generate("edge-guess"), guess)
        assert answer.status_code == 401, answer.text
        assert "not valid" in answer.json()["error"]["message"]
    # ... then 429 with Retry-After, even for a good code: guessing is bounded.
    good, _ = make_code(server_home, "gate-2")
    answer = signed_enrol(server, DeviceKey.generate("edge-good"), good)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
    assert "too many refused enrolment codes" in answer.json()["error"]["message"]

    # A request signed with another key than the one it registers is refused.
    key, impostor = DeviceKey.generate("edge-forged"), DeviceKey.generate("edge-forged")
    body = json.dumps(
        {"code": good, "device_id": key.device_id, "public_key": key.public_key.hex()}
    ).encode()
    headers = impostor.sign_request("POST", enrolment.ENROL_PATH, body)
    headers["Content-Type"] = "application/json"
    forged = httpx.post(server + enrolment.ENROL_PATH, content=body, headers=headers)
    assert forged.status_code == 401 and "signature" in forged.text

    refusals = [d for a, d in audit_actions(server_home) if a == "devices.request_refused"]
    with Deployment.open(server_home) as dep:
        with dep.db.read() as conn:
            assert conn.execute(select(func.count()).select_from(Device)).scalar_one() == 0
        assert {d["path"] for d in refusals} == {enrolment.ENROL_PATH}
        reasons = " | ".join(str(d["reason"]) for d in refusals)
        assert re.search(r"enrolment code [0-9a-f-]{36} expired", reasons)
        assert "unknown enrolment code" in reasons
        assert "too many refused enrolment codes (throttled)" in reasons
        assert "signature does not match" in reasons
        # The flood of unknown codes is one entry plus a count, not one entry each.
        assert sum("unknown enrolment code" in str(d["reason"]) for d in refusals) == 1
        # The code that could not be used for the throttle is still usable elsewhere.
        with dep.db.read() as conn:
            unused = conn.execute(
                select(func.count())
                .select_from(EnrolmentCode)
                .where(EnrolmentCode.used_at.is_(None))
            ).scalar_one()
        assert unused == 2


@pytest.mark.skipif(not ON_POSTGRES, reason="several server processes need PostgreSQL")
def test_one_code_used_at_once_on_two_servers_enrols_exactly_one_device(
    server_home: Path,
) -> None:
    rounds = 4
    with servers(server_home, 2, {}) as urls:
        for attempt in range(rounds):
            code, _ = make_code(server_home, "gate-1")
            keys = [DeviceKey.generate(f"edge-race-{attempt}-{i}") for i in range(2)]
            answers = race(urls, code, keys)
            assert sorted(answers) == [201, 409], answers
    with Deployment.open(server_home) as dep, dep.db.read() as conn:
        devices = conn.execute(select(func.count()).select_from(Device)).scalar_one()
        used = conn.execute(
            select(func.count())
            .select_from(EnrolmentCode)
            .where(EnrolmentCode.used_at.is_not(None))
        ).scalar_one()
    assert devices == rounds and used == rounds


def test_codes_are_typed_forgivingly_and_carry_100_bits() -> None:
    code = enrolment.new_code()
    assert CODE.fullmatch(code)
    assert len(enrolment.normalize(code)) * 5 == 100
    symbols = enrolment.normalize(code)
    assert enrolment.normalize(f" {code.lower()} ") == symbols
    assert enrolment.normalize("OOOOO-IIIII-LLLLL-ABCDE") == "000001111111111ABCDE"
    for bad in ("", "UUUUU-00000-00000-00000", code[:-1], code + "0"):
        with pytest.raises(InvalidRequest) as refused:
            enrolment.normalize(bad)
        assert bad not in str(refused.value) or not bad
    assert len({enrolment.new_code() for _ in range(200)}) == 200


def test_enrol_code_needs_registered_cameras(server_home: Path) -> None:
    code, out = invoke("devices", "enrol-code", "--camera", "gate-9", "--dir", str(server_home))
    assert code == 1 and "camera 'gate-9' is not registered" in out
    assert not CODE.search(out)


def test_migration_0017_matches_the_model(home: Path) -> None:
    assert_migration_matches_model(home, before="0016_pending_imports", table="enrolment_codes")


def test_edge_run_after_enrolment_needs_no_server_settings(
    server_home: Path, server: str, tmp_path: Path
) -> None:
    from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, models_missing

    if models_missing():
        pytest.skip(str(models_missing()))
    code, _ = make_code(server_home, "gate-2")
    box = tmp_path / "box"
    edge_enrol(load_settings(box), server_url=server, code=code, device_id="edge-2")
    assert not (box / "privplate.toml").exists()
    photos = tmp_path / "photos"
    photos.mkdir()
    for row in labelled_rows("eu", 2):
        (photos / Path(row["filename"]).name).symlink_to(ENDTOEND / row["filename"])
    args = ["edge", "run", "--source", str(photos), "--camera", "gate-2", "--no-display"]
    result = runner.invoke(
        app, [*args, "--dir", str(box)], env={"PRIVPLATE_MODELS_DIR": str(MODELS_DIR)}
    )
    output = result.output + (result.stderr if result.stderr_bytes else "")
    assert result.exit_code == 0, output
    assert f"0 reads waiting in the spool (server {server})" in output
    with Deployment.open(server_home) as dep, dep.db.read() as conn:
        stored = conn.execute(
            select(func.count()).select_from(Read).where(Read.camera_id == "gate-2")
        ).scalar_one()
    assert stored >= 1
