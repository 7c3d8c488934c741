"""Enrolling an edge device with a one-time code (privplate.devices.enrolment and
privplate.edge.enrolment), against a real `privplate serve`: the CLI on both sides, the code
used once (also by two server processes at once on PostgreSQL), refused codes audited and
throttled per address, only a keyed hash of the code in the database, and an enrolled box
reporting only for its cameras."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
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
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from privplate.audit.note import NoteVerifier
from privplate.audit.signing import AuditSigner
from privplate.cli.main import app
from privplate.deployment import Deployment, init_deployment
from privplate.devices import enrolment
from privplate.devices.batch_receipt import (
    receipt_message,
    refusal_message,
    verify_receipt,
    verify_refusal,
)
from privplate.devices.batches import IngestBatch
from privplate.devices.protocol import DeviceKey
from privplate.edge.enrolment import EnrolmentFailed, pinned_server_key, read_enrolment
from privplate.edge.enrolment import enrol as edge_enrol
from privplate.edge.reads import EdgeRead
from privplate.edge.runtime import read_device_key
from privplate.edge.spool import Spool
from privplate.edge.uplink import (
    DeviceClient,
    HttpUplink,
    ServerIdentity,
    ServerKeys,
    ServerNotTrusted,
    UplinkError,
    UplinkWorker,
)
from privplate.errors import InvalidRequest, KeyringError
from privplate.settings import load_settings
from privplate.store.enrolment_models import EnrolmentCode
from privplate.store.ingest import ReadIn, TokenIn
from privplate.store.models import Read
from privplate.store.server_models import Device, DeviceCamera
from privplate.tokens import canonical_plate, plate_token
from privplate.tokens.keyring import EpochKey
from tests.cluster_support import servers
from tests.conftest import ON_POSTGRES, database_in, vectors
from tests.migration_support import assert_migration_matches_model
from tests.privacy import dump_database
from tests.relay_support import Relay

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


@pytest.fixture
def other_home(tmp_path: Path) -> Iterator[Path]:
    """Server B: another deployment (its own database and keys), camera gate-1."""
    folder = tmp_path / "server-b-db"
    folder.mkdir()
    database = database_in(folder, "b")
    root = tmp_path / "server-b"
    init_deployment(root, database_url=next(database))
    assert invoke("cameras", "add", "gate-1", "--dir", str(root))[0] == 0
    yield root
    next(database, None)  # drops B's schema on PostgreSQL


def enrolled_box(server_home: Path, server: str, box: Path) -> tuple[DeviceKey, str]:
    code, vkey = make_code(server_home, "gate-1")
    edge_enrol(
        load_settings(box), server_url=server, code=code, device_id="edge-1", server_key=vkey
    )
    settings = load_settings(box)
    return read_device_key(settings.path(settings.edge.device_key_file)), vkey


def identity_at(url: str, key: DeviceKey, box: Path) -> ServerIdentity:
    """The edge's view of the server at ``url``, with the pin `edge run` uses."""
    return ServerIdentity(DeviceClient(url, key, timeout=10), pinned_server_key(load_settings(box)))


def spool_reads(spool: Spool, epoch: EpochKey, count: int, camera: str = "gate-1") -> None:
    for i in range(count):
        token = plate_token(epoch.key, canonical_plate(f"PIN{i}42"))
        read = ReadIn(
            uuid.uuid4(), camera, datetime.now(UTC), epoch.epoch_id, [TokenIn(token)], 0.9
        )
        spool.put(EdgeRead(read, None))


def stored_reads(home: Path) -> int:
    with Deployment.open(home) as dep, dep.db.read() as conn:
        return conn.execute(select(func.count()).select_from(Read)).scalar_one()


def test_an_edge_enrolled_with_one_server_refuses_another_and_keeps_its_reads(
    server_home: Path, server: str, other_home: Path, tmp_path: Path
) -> None:
    """Server B (another deployment) registered this device's public key by hand, as an
    impostor who learnt it could: it answers every request, with an epoch key sealed to the
    device, but cannot sign it with A's key. The edge pointed at B takes no key from it and
    sends it nothing; pointed back at A, the same spool is delivered."""
    box = tmp_path / "box"
    key, vkey = enrolled_box(server_home, server, box)
    added = invoke(
        "devices", "add", "edge-1", "--public-key", key.public_key.hex(), "--camera", "gate-1",
        "--dir", str(other_home),
    )  # fmt: skip
    assert added[0] == 0, added[1]
    spool = Spool(tmp_path / "spool.db")
    try:
        # Against A: the key verifies under the pin; three reads are tokenized and spooled.
        at_a = identity_at(server, key, box)
        epoch_a = ServerKeys(at_a.client, spool, identity=at_a).current_key()
        assert at_a.proven
        spool_reads(spool, epoch_a, 3)

        with servers(other_home, 1, {}) as (b_url,):
            (box / "privplate.toml").write_text(f'[edge]\nserver_url = "{b_url}"\n')
            assert load_settings(box).edge.server_url == b_url
            # B really answers this device: a bare request gets a sealed key that opens.
            answer = DeviceClient(b_url, key).request("GET", "/device/epoch")
            assert key.open_sealed_key(base64.b64decode(answer["sealed_key"]))
            # ... but the pin (from enrolment.json, whatever the URL says) refuses it.
            at_b = identity_at(b_url, key, box)
            assert at_b.pin is not None and at_b.pin.vkey() == vkey
            with pytest.raises(ServerNotTrusted, match="did not prove it holds the key"):
                at_b.fetch_epoch()
            # The edge keeps tokenizing under A's key (kept, verified again), never B's ...
            held = ServerKeys(at_b.client, spool, identity=at_b).current_key()
            assert (held.epoch_id, held.key) == (epoch_a.epoch_id, epoch_a.key)
            # ... and a box with no key kept takes none from B: no token is made at all.
            fresh = Spool(tmp_path / "fresh-spool.db")
            try:
                with pytest.raises(KeyringError, match="did not prove"):
                    ServerKeys(at_b.client, fresh, identity=at_b).current_key()
            finally:
                fresh.close()
            # Uploads to B are refused before any batch leaves; the reads stay spooled.
            worker_b = UplinkWorker(spool, HttpUplink(at_b.client, at_b))
            for _ in range(2):
                with pytest.raises(ServerNotTrusted) as refused:
                    worker_b.step()
                assert not refused.value.permanent
            assert spool.depth() == 3 and spool.set_aside_count()[0] == 0
        assert stored_reads(other_home) == 0

        # Pointed back at A (the enrolled URL): the same spool is delivered, all of it.
        (box / "privplate.toml").unlink()
        at_a = identity_at(server, key, box)
        worker = UplinkWorker(spool, HttpUplink(at_a.client, at_a))
        while worker.step():
            pass
        assert at_a.proven and spool.depth() == 0
    finally:
        spool.close()
    assert stored_reads(server_home) == 3


def test_a_spooled_epoch_key_is_checked_again_when_used_offline(
    server_home: Path, server: str, tmp_path: Path
) -> None:
    """The signed answer kept in the spool is verified again before it is used while the
    server is unreachable: a key planted in the spool (or a bare answer from before answers
    were signed) is not used by a pinned edge."""
    box = tmp_path / "box"
    key, _ = enrolled_box(server_home, server, box)
    spool = Spool(tmp_path / "spool.db")
    try:
        at_a = identity_at(server, key, box)
        online = ServerKeys(at_a.client, spool, identity=at_a).current_key()
        kept = json.loads(spool.get_state(ServerKeys.STATE) or b"{}")
        down = identity_at("http://127.0.0.1:9", key, box)  # nothing listens there
        assert ServerKeys(down.client, spool, identity=down).current_key().key == online.key
        answer = kept["answer"]
        for planted in (
            {**kept, "answer": {**answer, "epoch_id": answer["epoch_id"] + 1}},
            answer,  # a bare answer, as spools kept it before answers were signed
        ):
            spool.set_state(ServerKeys.STATE, json.dumps(planted).encode())
            with pytest.raises(KeyringError, match="unreachable"):
                ServerKeys(down.client, spool, identity=down).current_key()
    finally:
        spool.close()


def test_enrolment_refuses_a_server_key_it_was_not_given(
    server_home: Path, server: str, other_home: Path, tmp_path: Path
) -> None:
    """--server-key of deployment B, code from A: refused before anything is kept."""
    code, _ = make_code(server_home, "gate-1")
    with Deployment.open(other_home) as dep:
        other_key = dep.audit.signer.note_verifier.vkey()
    settings = load_settings(tmp_path / "box")
    with pytest.raises(EnrolmentFailed, match="not the server that made the code"):
        edge_enrol(settings, server_url=server, code=code, device_id="edge-1", server_key=other_key)
    assert read_enrolment(settings) is None
    assert not settings.path(settings.edge.device_key_file).exists()


def test_the_epoch_answer_signature_matches_its_vector() -> None:
    """crypto/vectors/device_epoch.json (message by hand, signature by openssl): the server's
    message and signature are those bytes, and the edge's check takes exactly that answer."""
    from privplate.audit.note import NoteVerifier
    from privplate.audit.signing import AuditSigner
    from privplate.devices.epoch_answer import answer_message, epoch_message, verify_answer

    vector = vectors("device_epoch")
    answer = dict(vector["answer"])  # type: ignore[call-overload]
    nonce = bytes.fromhex(str(vector["nonce"]))
    device = str(vector["device_id"])
    signer = AuditSigner(bytes.fromhex(str(vector["audit_seed"])))
    assert signer.note_verifier.vkey() == vector["vkey"]
    message = epoch_message(
        device_id=device,
        nonce=nonce,
        epoch_id=answer["epoch_id"],
        starts_at=datetime.fromisoformat(answer["starts_at"]),
        ends_at=datetime.fromisoformat(answer["ends_at"]),
        sealed_key=base64.b64decode(answer["sealed_key"]),
        fold_confusables=answer["fold_confusables"],
        confusables=answer["confusables"],
        evidence_public_key=answer["evidence_public_key"],
    )
    assert message.hex() == vector["message_hex"]
    assert answer_message(answer, device_id=device, nonce=nonce) == message
    assert signer.sign(message).hex() == vector["signature"]
    pin = NoteVerifier.parse(str(vector["vkey"]))
    assert verify_answer(pin, answer, device_id=device, nonce=nonce)
    # Another device, another nonce, or any changed field: the signature no longer holds.
    assert not verify_answer(pin, answer, device_id="edge-other", nonce=nonce)
    assert not verify_answer(pin, answer, device_id=device, nonce=bytes(16))
    for field, value in (("epoch_id", 1), ("fold_confusables", False), ("confusables", {})):
        assert not verify_answer(pin, {**answer, field: value}, device_id=device, nonce=nonce)
    other = AuditSigner.generate().note_verifier
    assert not verify_answer(other, answer, device_id=device, nonce=nonce)


def test_the_batch_receipt_signature_matches_its_vector() -> None:
    """crypto/vectors/batch_receipt.json (messages by hand, signatures by openssl): the server's
    messages and signatures are those bytes, and the edge's check takes each answer for its own
    request, batch and bytes only."""

    vector: dict[str, Any] = vectors("batch_receipt")
    device, batch_id = vector["device_id"], uuid.UUID(vector["batch_id"])
    digest = bytes.fromhex(vector["digest"])
    assert hashlib.sha256(vector["body"].encode()).digest() == digest
    signer = AuditSigner(bytes.fromhex(vector["audit_seed"]))
    assert signer.note_verifier.vkey() == vector["vkey"]
    pin = NoteVerifier.parse(vector["vkey"])
    first, retry = vector["receipts"]
    assert (first["answer"]["replayed"], retry["answer"]["replayed"]) == (False, True)
    for receipt, other in ((first, retry), (retry, first)):
        answer, nonce = receipt["answer"], bytes.fromhex(receipt["nonce"])
        counts = {k: answer[k] for k in ("inserted", "duplicates", "expired")}
        message = receipt_message(
            device_id=device, nonce=nonce, batch_id=batch_id, digest=digest, **counts
        )
        assert message.hex() == receipt["message_hex"]
        assert signer.sign(message).hex() == receipt["signature"]
        assert base64.b64decode(answer["signature"]).hex() == receipt["signature"]

        def check(
            answer: dict[str, Any] = answer,
            nonce: bytes = nonce,
            device: str = device,
            batch_id: uuid.UUID = batch_id,
            digest: bytes = digest,
            pin: NoteVerifier = pin,
        ) -> bool:
            return verify_receipt(
                pin, answer, device_id=device, nonce=nonce, batch_id=batch_id, digest=digest
            )

        assert check()
        # Another request (the other receipt's nonce), device, batch, bytes, count or key, or
        # no signature at all: it does not verify.
        assert not check(nonce=bytes.fromhex(other["nonce"]))
        assert not check(device="edge-other")
        assert not check(batch_id=uuid.uuid4())
        assert not check(digest=hashlib.sha256(b"other bytes").digest())
        for field in counts:
            assert not check({**answer, field: answer[field] + 1})
        assert not check({k: v for k, v in answer.items() if k != "signature"})
        assert not check(pin=AuditSigner.generate().note_verifier)


def test_the_server_signs_each_receipt_and_the_edge_then_drops_the_batch(
    server_home: Path, server: str, tmp_path: Path
) -> None:
    """A real server's answer to POST /ingest is signed by the pinned key over that request's
    nonce, the batch id and the SHA-256 of the body; a retry of the same bytes is answered from
    the stored receipt, signed over the retry's nonce. On such receipts the edge's uplink drops
    its batches from the spool."""

    box = tmp_path / "box"
    key, vkey = enrolled_box(server_home, server, box)
    pin = NoteVerifier.parse(vkey)
    spool = Spool(tmp_path / "spool.db")
    try:
        at_a = identity_at(server, key, box)
        epoch = ServerKeys(at_a.client, spool, identity=at_a).current_key()
        spool_reads(spool, epoch, 2)
        batch = spool.next_batch(200)
        assert batch is not None
        digest = hashlib.sha256(batch.body).digest()

        def check(
            answer: dict[str, Any], nonce: bytes, batch_id: uuid.UUID = batch.batch_id
        ) -> bool:
            return verify_receipt(
                pin, answer, device_id="edge-1", nonce=nonce, batch_id=batch_id, digest=digest
            )

        first, first_nonce = at_a.client.signed_request("POST", "/ingest", batch.body)
        again, again_nonce = at_a.client.signed_request("POST", "/ingest", batch.body)
        assert (first["inserted"], first["duplicates"], first["replayed"]) == (2, 0, False)
        assert (again["inserted"], again["duplicates"], again["replayed"]) == (0, 2, True)
        assert check(first, first_nonce) and check(again, again_nonce)
        assert not check(first, again_nonce) and not check(again, first_nonce)
        assert not check(first, first_nonce, batch_id=uuid.uuid4())

        # The uplink sends that batch (a third time) and a new one; both receipts verify and
        # both batches leave the spool.
        worker = UplinkWorker(spool, HttpUplink(at_a.client, at_a))
        assert worker.step() and spool.depth() == 0 and at_a.proven
        spool_reads(spool, epoch, 1)
        assert worker.step() and spool.depth() == 0 and at_a.proven
    finally:
        spool.close()
    assert stored_reads(server_home) == 3


def signed_over(
    signer: AuditSigner, headers: dict[str, str], body: bytes, answer: dict[str, Any]
) -> dict[str, Any]:
    """``answer`` signed by ``signer`` as a receipt for this very request and batch."""
    message = receipt_message(
        device_id=headers["x-privplate-device"],
        nonce=bytes.fromhex(headers["x-privplate-nonce"]),
        batch_id=uuid.UUID(json.loads(body)["batch_id"]),
        digest=hashlib.sha256(body).digest(),
        inserted=answer["inserted"],
        duplicates=answer["duplicates"],
        expired=answer["expired"],
    )
    return {**answer, "signature": base64.b64encode(signer.sign(message)).decode()}


def test_an_edge_keeps_a_batch_whose_receipt_was_not_signed_for_it(
    server_home: Path, server: str, tmp_path: Path
) -> None:
    """Someone on the edge's plain-HTTP path lets its identity proof through (A's signed epoch
    answers pass), then answers the upload itself: with A's receipt for this batch from an
    earlier request (an old nonce), stripped of its signature, signed by another key over this
    very request and batch, or A's receipt for another batch. Each time the batch stays in the
    spool and the edge forgets the proof; passed through to A, every read is delivered once."""
    box = tmp_path / "box"
    key, _ = enrolled_box(server_home, server, box)
    relay = Relay(server)
    spool = Spool(tmp_path / "spool.db")
    try:
        at_a = identity_at(server, key, box)
        epoch = ServerKeys(at_a.client, spool, identity=at_a).current_key()
        spool_reads(spool, epoch, 2)
        on_path = identity_at(relay.url, key, box)
        worker = UplinkWorker(spool, HttpUplink(on_path.client, on_path))

        def refused(waiting: int) -> None:
            with pytest.raises(ServerNotTrusted, match="no valid receipt signature") as caught:
                worker.step()
            assert not caught.value.permanent and not on_path.proven
            assert spool.depth() == waiting and spool.set_aside_count()[0] == 0

        # A stores the batch but its answer is lost on the way: the batch stays (a retry).
        relay.swallow = True
        with pytest.raises(UplinkError, match="502"):
            worker.step()
        relay.swallow = False
        kept = relay.ingest_answers[-1]
        assert kept["inserted"] == 2 and spool.depth() == 2

        relay.forge = lambda _headers, _body: kept  # this batch's receipt, another request's
        refused(2)
        relay.forge = lambda _headers, _body: {k: v for k, v in kept.items() if k != "signature"}
        refused(2)
        other_key = AuditSigner.generate()
        relay.forge = lambda headers, body: signed_over(other_key, headers, body, kept)
        refused(2)

        # Passed through: A answers the retry from its stored receipt, and it verifies.
        relay.forge = None
        assert worker.step() and spool.depth() == 0
        assert relay.ingest_answers[-1]["replayed"] is True
        # A new batch answered with A's receipt for the first one: kept, and never reached A.
        spool_reads(spool, epoch, 1)
        relay.forge = lambda _headers, _body: kept
        refused(1)
        assert stored_reads(server_home) == 2
        relay.forge = None
        assert worker.step() and spool.depth() == 0
    finally:
        spool.close()
        relay.close()
    assert stored_reads(server_home) == 3


def test_the_batch_refusal_signature_matches_its_vector() -> None:
    """crypto/vectors/batch_refusal.json (message by hand, signature by openssl): the server's
    message and signature are those bytes, and the edge's check takes the error answer for its
    own request, bytes, status and error type only."""
    vector: dict[str, Any] = vectors("batch_refusal")
    device, nonce = vector["device_id"], bytes.fromhex(vector["nonce"])
    digest, status = bytes.fromhex(vector["digest"]), vector["status"]
    answer = vector["answer"]
    assert hashlib.sha256(vector["body"].encode()).digest() == digest
    signer = AuditSigner(bytes.fromhex(vector["audit_seed"]))
    error = answer["error"]
    message = refusal_message(
        device_id=device, nonce=nonce, digest=digest, status=status, error=error["type"],
        message=error["message"],
    )  # fmt: skip
    assert message.hex() == vector["message_hex"]
    assert signer.sign(message).hex() == vector["signature"]
    assert base64.b64decode(answer["signature"]).hex() == vector["signature"]
    pin = NoteVerifier.parse(vector["vkey"])

    def check(
        answer: dict[str, Any] = answer,
        nonce: bytes = nonce,
        device: str = device,
        digest: bytes = digest,
        status: int = status,
        pin: NoteVerifier = pin,
    ) -> bool:
        return verify_refusal(
            pin, answer, device_id=device, nonce=nonce, digest=digest, status=status
        )

    assert check()
    assert not check(nonce=bytes(16))
    assert not check(device="edge-other")
    assert not check(digest=hashlib.sha256(b"other bytes").digest())
    assert not check(status=403)
    assert not check({**answer, "error": {**error, "type": "device_not_allowed"}})
    assert not check({**answer, "error": {**error, "message": "call 555-0100 to fix this"}})
    assert not check({"error": answer["error"]})
    assert not check({"signature": answer["signature"]})
    assert not check(pin=AuditSigner.generate().note_verifier)
    # A receipt's signature is no refusal's: the tags differ.
    receipt = receipt_message(
        device_id=device, nonce=nonce, batch_id=uuid.uuid4(), digest=digest,
        inserted=0, duplicates=0, expired=0,
    )  # fmt: skip
    assert not check({**answer, "signature": base64.b64encode(signer.sign(receipt)).decode()})


def test_a_receipt_states_its_counts_as_json_integers(tmp_path: Path) -> None:
    """A count of 3.9, "3" or true is no count: such a receipt does not verify even when the
    signature is over the integer it would round to."""
    signer = AuditSigner.generate()
    nonce, batch_id, digest = bytes(16), uuid.uuid4(), hashlib.sha256(b"body").digest()
    message = receipt_message(
        device_id="edge-1", nonce=nonce, batch_id=batch_id, digest=digest,
        inserted=1, duplicates=0, expired=0,
    )  # fmt: skip
    good = {"inserted": 1, "duplicates": 0, "expired": 0}
    good["signature"] = base64.b64encode(signer.sign(message)).decode()  # type: ignore[assignment]
    pin = signer.note_verifier

    def check(answer: dict[str, Any]) -> bool:
        return verify_receipt(
            pin, answer, device_id="edge-1", nonce=nonce, batch_id=batch_id, digest=digest
        )

    assert check(good)
    for loose in (1.9, "1", True, 1.0):
        assert not check({**good, "inserted": loose})


def test_an_edge_sets_a_batch_aside_only_on_a_refusal_signed_for_it(
    server_home: Path, server: str, tmp_path: Path
) -> None:
    """The real server refuses a batch for a camera this device may not report for (403
    device_not_allowed), signed over the request and the bytes: the edge sets it aside and the
    rest flows. Someone on the path who answers an upload with a refusal (unsigned, stripped of
    its signature, or A's signed refusal of an earlier request) cannot get a batch set aside,
    which would drop it a week later: it stays in the spool, the edge forgets the proof, and
    passed through to A it is delivered."""
    box = tmp_path / "box"
    key, _ = enrolled_box(server_home, server, box)
    with Deployment.open(server_home) as dep:
        dep.add_camera("gate-9")  # known to the server, not this device's
    relay = Relay(server)
    spool = Spool(tmp_path / "spool.db")
    try:
        at_a = identity_at(server, key, box)
        epoch = ServerKeys(at_a.client, spool, identity=at_a).current_key()
        on_path = identity_at(relay.url, key, box)
        worker = UplinkWorker(spool, HttpUplink(on_path.client, on_path))
        # A genuine refusal, relayed: signed, so set aside; the edge still trusts A.
        spool_reads(spool, epoch, 1, camera="gate-9")
        assert worker.step() and worker.rejected == 1 and on_path.proven
        assert spool.depth() == 0 and spool.set_aside_count() == (1, 1)
        kept = relay.ingest_refusals[-1]
        assert kept["error"]["type"] == "device_not_allowed" and kept["signature"]

        spool_reads(spool, epoch, 2)

        def refused(status: int, answer: dict[str, Any]) -> None:
            relay.forge_status = status
            relay.forge = lambda _headers, _body: answer
            with pytest.raises(ServerNotTrusted, match="no valid signature") as caught:
                worker.step()
            assert not caught.value.permanent and not on_path.proven
            assert spool.depth() == 2 and spool.set_aside_count() == (1, 1)

        unsigned = {"error": {"type": "conflict", "message": "this batch_id was already stored"}}
        refused(409, unsigned)
        refused(400, {"error": {"type": "ingest_rejected", "message": "no"}})
        refused(403, {k: v for k, v in kept.items() if k != "signature"})
        refused(403, kept)  # A's own signature, over another request and other bytes
        refused(422, {"detail": "not even privplate's error shape"})
        assert stored_reads(server_home) == 0

        relay.forge, relay.forge_status = None, 200
        assert worker.step() and spool.depth() == 0 and on_path.proven
        assert spool.set_aside_count() == (1, 1) and worker.rejected == 1
    finally:
        spool.close()
        relay.close()
    assert stored_reads(server_home) == 2


def test_a_batch_too_large_for_the_server_goes_again_in_smaller_batches(
    server_home: Path, server: str, tmp_path: Path
) -> None:
    """The server's body limit (413, answered before the device's signature is checked, so
    never signed) is met by sending the batch's reads again in batches half the size: every
    read is delivered, on signed receipts; none is set aside, none is lost."""
    box = tmp_path / "box"
    key, _ = enrolled_box(server_home, server, box)
    relay = Relay(server)
    too_large = {"error": {"type": "body_too_large", "message": "over the limit"}}
    # The limit: more than 2 reads a batch (the relay answers as the server's BodyLimit does).
    relay.forge_status = 413
    relay.forge = lambda _headers, body: too_large if len(json.loads(body)["reads"]) > 2 else None
    spool = Spool(tmp_path / "spool.db")
    try:
        at_a = identity_at(server, key, box)
        epoch = ServerKeys(at_a.client, spool, identity=at_a).current_key()
        spool_reads(spool, epoch, 8)
        on_path = identity_at(relay.url, key, box)
        worker = UplinkWorker(spool, HttpUplink(on_path.client, on_path), batch_reads=8)
        sent = 0
        while spool.depth() and sent < 20:
            try:
                worker.step()
            except ServerNotTrusted:
                pytest.fail("a 413 is not a reason to distrust the server")
            sent += 1
        assert spool.depth() == 0 and spool.set_aside_count() == (0, 0)
        assert worker.batch_limit == 2 and worker.rejected == 0  # 8, then 4, then 2
    finally:
        spool.close()
        relay.close()
    assert stored_reads(server_home) == 8


def test_an_unpinned_edge_takes_any_receipt_and_says_once_it_checks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No enrolment, no edge.server_key: the uplink checks no receipt, as before receipts were
    signed, and its log says once that the server's identity is not checked."""
    relay = Relay("http://127.0.0.1:9")  # nothing listens there: every answer is the relay's
    relay.forge = lambda _headers, _body: {"inserted": 1, "duplicates": 0, "expired": 0}
    client = DeviceClient(relay.url, DeviceKey.generate("edge-1"), timeout=10)
    unpinned = ServerIdentity(client, None)
    spool = Spool(tmp_path / "spool.db")
    worker = UplinkWorker(spool, HttpUplink(client, unpinned))
    now = datetime.now(UTC)
    epoch = EpochKey(1, now - timedelta(hours=1), now + timedelta(hours=1), bytes(32))
    try:
        with caplog.at_level(logging.WARNING, logger="privplate.edge.uplink"):
            for _ in range(2):
                spool_reads(spool, epoch, 1)
                assert worker.step() and spool.depth() == 0
    finally:
        spool.close()
        relay.close()
    warnings = [r.getMessage() for r in caplog.records if "pins no server key" in r.getMessage()]
    assert len(warnings) == 1
