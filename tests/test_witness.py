"""Witnesses: C2SP cosignature vectors, the witness process against a real server (uvicorn on
a socket, urllib on the witness's side), what the server accepts, publishes and verifies, and
the witness refusing a log that was rewritten, forked or rolled back."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import delete, update
from typer.testing import CliRunner

from privplate.api import create_app
from privplate.audit.cosignature import (
    Cosignature,
    Cosigner,
    cosigned_message,
    parse_cosignature,
    verify_cosignature,
)
from privplate.audit.cosigners import accept_cosignature, configured_witnesses
from privplate.audit.note import (
    ALG_COSIGNATURE_V1,
    NoteError,
    NoteVerifier,
    SignatureLine,
    open_note,
    split_note,
)
from privplate.audit.public import public_note
from privplate.audit.signing import note_verifier
from privplate.audit.witness import (
    LogInconsistent,
    ServerUnavailable,
    Witness,
    WitnessState,
    create_witness_key,
    read_witness_key,
    watch,
)
from privplate.cli.main import app as cli
from privplate.deployment import Deployment
from privplate.errors import (
    ConfigError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from privplate.store.models import AuditCheckpoint, AuditEntry
from privplate.store.witness_models import AuditCosignature
from privplate.transparency import build_report
from privplate.transparency.markdown import render_markdown
from tests.conftest import vectors

VEC = vectors("cosignature")
runner = CliRunner()


# -- the C2SP vectors ------------------------------------------------------------------------


def test_the_vector_cosignature_is_reproduced_and_verifies() -> None:
    w = VEC["witness"]
    assert isinstance(w, dict)
    cosigner = Cosigner(w["name"], bytes.fromhex(w["seed"]))
    assert cosigner.verifier.public_key.hex() == w["public_key"]
    assert f"{cosigner.verifier.key_hash:08x}" == w["key_hash"]
    assert cosigner.vkey() == w["vkey"]
    text = str(VEC["checkpoint_text"])
    ts = int(str(VEC["timestamp"]))
    assert cosigned_message(text, ts).decode() == VEC["message"]
    made = cosigner.cosign(text, ts)
    # Ed25519 is deterministic: the same bytes openssl made.
    assert made.signature.hex() == VEC["signature"]
    assert made.line().render() == VEC["signature_line"]
    verifier = NoteVerifier.parse(w["vkey"])
    assert verifier.alg == ALG_COSIGNATURE_V1
    _, lines = split_note(text + "\n" + str(VEC["signature_line"]))
    assert verify_cosignature(verifier, text, lines[0]) == made


def test_the_cosigned_note_opens_with_the_log_key_and_keeps_the_cosignature() -> None:
    log = VEC["log"]
    assert isinstance(log, dict)
    log_verifier = note_verifier(bytes.fromhex(log["public_key"]))
    opened = open_note(str(VEC["cosigned_note"]), [log_verifier])
    assert opened.text == VEC["checkpoint_text"]
    assert [line.render() for line in opened.verified] == [log["signature_line"]]
    (cosig,) = opened.unverified
    assert parse_cosignature(cosig).timestamp == VEC["timestamp"]


@pytest.mark.parametrize(
    "tamper",
    ["text", "time", "signature", "name", "length"],
)
def test_a_changed_cosignature_fails(tamper: str) -> None:
    w = VEC["witness"]
    assert isinstance(w, dict)
    verifier = NoteVerifier.parse(w["vkey"])
    text = str(VEC["checkpoint_text"])
    _, (line,) = split_note(text + "\n" + str(VEC["signature_line"]))
    if tamper == "text":
        text = text.replace("\n3\n", "\n4\n")
    elif tamper == "time":
        line = replace(line, payload=(1).to_bytes(8, "big") + line.payload[8:])
    elif tamper == "signature":
        line = replace(line, payload=line.payload[:-1] + bytes([line.payload[-1] ^ 1]))
    elif tamper == "name":
        line = replace(line, name="someone.else/witness")
    else:
        line = replace(line, payload=line.payload[8:])
    with pytest.raises(NoteError):
        verify_cosignature(verifier, text, line)


def test_a_log_key_is_not_a_cosignature_key() -> None:
    log = VEC["log"]
    assert isinstance(log, dict)
    # The same key bytes under algorithm 0x01 have another hash, and are refused as a witness.
    plain = NoteVerifier("w", bytes.fromhex(log["public_key"]))
    line = SignatureLine("w", plain.key_hash, bytes(72))
    with pytest.raises(NoteError, match="not a cosignature/v1 key"):
        verify_cosignature(plain, str(VEC["checkpoint_text"]), line)
    with pytest.raises(ConfigError, match="not a cosignature/v1 key"):
        configured_witnesses([plain.vkey()])


# -- the witness's files ---------------------------------------------------------------------


def test_the_witness_key_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "w" / "witness.key"
    made = create_witness_key(path, "clerk.example/w1")
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_witness_key(path).vkey() == made.vkey()
    with pytest.raises(ConfigError, match="already exists"):
        create_witness_key(path, "clerk.example/w1")
    with pytest.raises(ConfigError, match="not a valid note key name"):
        create_witness_key(tmp_path / "other.key", "has space")
    path.chmod(0o644)
    with pytest.raises(ConfigError):
        read_witness_key(path)


def test_init_prints_the_vkey_the_settings_take(tmp_path: Path, home: Path) -> None:
    key = tmp_path / "witness.key"
    result = runner.invoke(cli, ["audit", "witness", "--init", "--key", str(key), "--name", "w1"])
    assert result.exit_code == 0, result.output
    vkey = result.output.strip().splitlines()[-1]
    assert vkey == read_witness_key(key).vkey()
    _configure(home, [vkey])
    with Deployment.open(home) as dep:
        assert [v.vkey() for v in configured_witnesses(dep.settings.audit.witnesses)] == [vkey]


def test_the_settings_refuse_a_malformed_witness_key(home: Path) -> None:
    _configure(home, ["w1+1234+notakey"])
    with pytest.raises(ConfigError, match="not a witness key"):
        Deployment.open(home)


# -- a real server ---------------------------------------------------------------------------


def _configure(home: Path, witnesses: list[str]) -> None:
    config = home / "privplate.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + "\n[audit]\ncheckpoint_interval_minutes = 0\n"
        + f"witnesses = {json.dumps(witnesses)}\n"
        + "\n[server]\nrun_purge_scheduler = false\n",
        encoding="utf-8",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(home: Path, **ssl: str) -> Iterator[str]:
    """The API server on a real socket (uvicorn in a thread), as the witness reaches it."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(home, run_scheduler=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        **ssl,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "the server did not start"
        yield f"{'https' if ssl else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def witnessed(home: Path, tmp_path: Path) -> Iterator[tuple[str, Witness]]:
    cosigner = create_witness_key(tmp_path / "witness.key", "clerk.example/w1")
    _configure(home, [cosigner.vkey()])
    with Deployment.open(home) as dep:
        dep.audit.record(actor="test", action="test.first")
        dep.audit.sign_if_grown()
        log_key = dep.audit.signer.note_verifier.vkey()
    with served(home) as url:
        yield (
            url,
            Witness(
                server=url, log_key=log_key, cosigner=cosigner, state_path=tmp_path / "state.json"
            ),
        )


def _grow(home: Path, entries: int = 3) -> int:
    with Deployment.open(home) as dep:
        for i in range(entries):
            dep.audit.record(actor="test", action="test.grow", details={"i": i})
        signed = dep.audit.sign_if_grown()
        assert signed is not None
        return signed.tree_size


def test_the_witness_cosigns_as_the_log_grows_and_verify_lists_it(
    home: Path, witnessed: tuple[str, Witness]
) -> None:
    _, witness = witnessed
    first = witness.run_once()
    assert first.previous_size is None and first.recorded == "new"
    size = _grow(home)
    second = witness.run_once()
    assert (second.previous_size, second.tree_size, second.recorded) == (
        first.tree_size,
        size,
        "new",
    )
    state = WitnessState.read(witness.state_path)
    assert state is not None and state.tree_size == size
    # The published note carries the log's signature and the witness's cosignature.
    with Deployment.open(home) as dep:
        note = public_note(dep.audit)
        opened = open_note(note, [dep.audit.signer.note_verifier])
        (line,) = opened.unverified
        assert verify_cosignature(witness.cosigner.verifier, opened.text, line).timestamp == (
            second.cosignature.timestamp
        )
        actions = [e.action for e in dep.audit.entries(action="audit.cosigned")]
    assert actions == ["audit.cosigned", "audit.cosigned"]
    result = runner.invoke(cli, ["audit", "verify", "--dir", str(home)])
    assert result.exit_code == 0, result.output
    assert (
        f"witness clerk.example/w1 (configured): cosigned 2 sizes ({first.tree_size}, {size}); "
        f"latest {size} entries at"
    ) in result.output
    # The public report names who watches the log.
    with Deployment.open(home) as dep:
        report = build_report(
            dep, start=datetime.now(UTC) - timedelta(days=1), end=datetime.now(UTC)
        )
    (listed,) = report["audit_log"]["witnesses"]
    assert (listed["name"], listed["largest_size_cosigned"], listed["configured"]) == (
        "clerk.example/w1",
        size,
        True,
    )
    assert "- clerk.example/w1: up to " + str(size) + " entries" in render_markdown(report)


def test_the_same_checkpoint_again_refreshes_the_time_without_an_audit_entry(
    home: Path, witnessed: tuple[str, Witness]
) -> None:
    _, witness = witnessed
    start = float(int(time.time()) - 300)  # within the clock skew allowed
    ticks = iter([start, start + 100, start + 100])
    witness.clock = lambda: next(ticks)
    assert witness.run_once().recorded == "new"
    again = witness.run_once()
    assert (again.previous_size, again.recorded) == (again.tree_size, "refreshed")
    assert witness.run_once().recorded == "unchanged"
    with Deployment.open(home) as dep, dep.db.read() as conn:
        stamps = [r.timestamp for r in conn.execute(AuditCosignature.__table__.select())]
        assert stamps == [int(start) + 100]
        assert len(list(dep.audit.entries(action="audit.cosigned"))) == 1


def _rewrite(home: Path, keep: int, entries: int) -> int:
    """An insider with the audit key replaces history after entry ``keep``: later entries
    and checkpoints deleted, different ones appended and signed (MACs and all)."""
    with Deployment.open(home) as dep:
        with dep.db.write() as conn:
            conn.execute(delete(AuditEntry).where(AuditEntry.seq >= keep))
            conn.execute(delete(AuditCheckpoint).where(AuditCheckpoint.tree_size > keep))
        for i in range(entries):
            dep.audit.record(actor="insider", action="test.rewritten", details={"i": i})
        signed = dep.audit.sign_if_grown()
        assert signed is not None
        return signed.tree_size


def test_a_rewritten_longer_log_is_refused_and_named(
    home: Path, tmp_path: Path, witnessed: tuple[str, Witness]
) -> None:
    _, witness = witnessed
    witness.run_once()
    seen = _grow(home)
    witness.run_once()
    before = witness.state_path.read_bytes()
    with served(home) as fresh_url:  # a restarted server: no cached tree
        rewritten = _rewrite(home, keep=1, entries=seen + 5)
        witness.base = fresh_url
        with pytest.raises(LogInconsistent) as caught:
            witness.run_once()
    message = str(caught.value)
    assert f"accepted {seen} entries" in message and f"now shows {rewritten} entries" in message
    assert "consistency proof" in message and "not cosigned" in message
    assert witness.state_path.read_bytes() == before
    with Deployment.open(home) as dep, dep.db.read() as conn:
        sizes = {r.tree_size for r in conn.execute(AuditCosignature.__table__.select())}
    assert rewritten not in sizes
    # The deployment's own verification now fails on the witness's kept cosignature.
    result = runner.invoke(cli, ["audit", "verify", "--dir", str(home)])
    assert result.exit_code == 1
    assert f"log rewritten: witness clerk.example/w1 cosigned {seen} entries" in result.output


def test_a_fork_at_the_same_size_and_a_rollback_are_refused(
    home: Path, witnessed: tuple[str, Witness]
) -> None:
    _, witness = witnessed
    witness.run_once()
    seen = _grow(home, entries=4)
    witness.run_once()
    with served(home) as fresh_url:
        witness.base = fresh_url
        _rewrite(home, keep=seen - 2, entries=2)  # the same size, another root
        with pytest.raises(LogInconsistent, match=f"log forked: .* accepted {seen} entries"):
            witness.run_once()
        _rewrite(home, keep=seen - 3, entries=1)  # smaller
        with pytest.raises(LogInconsistent, match=f"rolled back .* now shows {seen - 2} entries"):
            witness.run_once()


def test_a_checkpoint_not_signed_by_the_pinned_key_is_refused(
    home: Path, tmp_path: Path, witnessed: tuple[str, Witness]
) -> None:
    url, witness = witnessed
    other = Witness(
        server=url,
        log_key=NoteVerifier(witness.log.name, bytes(32 * [7])).vkey(),
        cosigner=witness.cosigner,
        state_path=tmp_path / "other-state.json",
    )
    with pytest.raises(LogInconsistent, match="pinned log key"):
        other.run_once()
    assert not (tmp_path / "other-state.json").exists()


def test_an_unreachable_server_is_not_a_verdict(tmp_path: Path) -> None:
    cosigner = create_witness_key(tmp_path / "w.key", "w1")
    log = NoteVerifier("privplate/0000000000000000", bytes(32)).vkey()
    witness = Witness(
        server=f"http://127.0.0.1:{_free_port()}",
        log_key=log,
        cosigner=cosigner,
        state_path=tmp_path / "state.json",
        timeout=2,
    )
    with pytest.raises(ServerUnavailable, match="unreachable") as caught:
        witness.run_once()
    assert caught.value.exit_code == 69


@contextmanager
def hostile(answer: bytes, *, drip: bytes = b"") -> Iterator[str]:
    """A server that is not privplate's: it answers every connection with ``answer`` then,
    if ``drip`` is given, one byte of it at a time for as long as the witness listens."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(answer)
                    for byte in drip * 1000:
                        if done.wait(0.2):
                            break
                        conn.sendall(bytes([byte]))
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        listener.close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("answer", "drip", "message"),
    [
        # Each byte comes within the socket timeout: only a limit on the whole exchange ends it.
        (b"HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n\r\n", b"a", "did not answer"),
        (b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a", "did not answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nprivplate/0\n", b"", "cut short"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 120 + b"\r\n", b"", "malformed HTTP"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"", "malformed HTTP"),
        (b"not http\r\n\r\n", b"", "malformed HTTP"),
    ],
)
def test_a_hostile_answer_is_not_a_verdict_and_does_not_hang_the_witness(
    tmp_path: Path, answer: bytes, drip: bytes, message: str
) -> None:
    """Whatever a server sends, a round ends within the timeout with ServerUnavailable (never
    an exception the watch would die of, never a verdict on the log)."""
    cosigner = create_witness_key(tmp_path / "w.key", "w1")
    log = NoteVerifier("privplate/0000000000000000", bytes(32)).vkey()
    with hostile(answer, drip=drip) as url:
        witness = Witness(
            server=url,
            log_key=log,
            cosigner=cosigner,
            state_path=tmp_path / "state.json",
            timeout=1,
        )
        with pytest.raises(ServerUnavailable, match=message):
            witness.run_once()
        stop = threading.Event()  # set by the first report: one round of the watch
        reports: list[str] = []

        def report(text: str, error: object) -> None:
            reports.append(text)
            stop.set()

        assert watch(witness, interval=0, report=report, stop=stop) == 69
        assert len(reports) == 1 and message in reports[0]
    assert not witness.state_path.exists()


# -- what the server accepts -----------------------------------------------------------------


def _note(dep: Deployment, cosigner: Cosigner, ts: int, size: int | None = None) -> str:
    text = public_note(dep.audit, size).split("\n\n")[0] + "\n"
    return text + "\n" + cosigner.cosign(text, ts).line().render()


def test_the_server_accepts_only_configured_witnesses_over_its_own_checkpoints(
    home: Path, tmp_path: Path
) -> None:
    cosigner = create_witness_key(tmp_path / "w.key", "w1")
    stranger = create_witness_key(tmp_path / "s.key", "w1-impostor")
    _configure(home, [cosigner.vkey()])
    now = int(time.time())
    with Deployment.open(home) as dep:
        dep.audit.record(actor="test", action="test.first")
        signed = dep.audit.sign_if_grown()
        assert signed is not None
        witnesses = configured_witnesses(dep.settings.audit.witnesses)
        with pytest.raises(PermissionDenied, match=r"audit\.witnesses"):
            accept_cosignature(dep.audit, witnesses, _note(dep, stranger, now))
        good = _note(dep, cosigner, now)
        text = good.split("\n\n")[0] + "\n"
        made = cosigner.cosign(text, now)
        forged = replace(made, signature=bytes(64))
        with pytest.raises(InvalidRequest, match="does not verify"):
            accept_cosignature(dep.audit, witnesses, text + "\n" + forged.line().render())
        with pytest.raises(InvalidRequest, match="ahead of the server's clock"):
            accept_cosignature(dep.audit, witnesses, _note(dep, cosigner, now + 3600))
        root = base64.b64encode(signed.root).decode()
        unsigned_size = good.replace(f"\n{signed.tree_size}\n", "\n99\n", 1)
        text = unsigned_size.split("\n\n")[0] + "\n"
        with pytest.raises(NotFound, match="no checkpoint note of 99"):
            accept_cosignature(
                dep.audit, witnesses, text + "\n" + cosigner.cosign(text, now).line().render()
            )
        text = good.split("\n\n")[0].replace(root, base64.b64encode(bytes(32)).decode()) + "\n"
        with pytest.raises(Conflict, match="never signed"):
            accept_cosignature(
                dep.audit, witnesses, text + "\n" + cosigner.cosign(text, now).line().render()
            )
        with pytest.raises(InvalidRequest, match="not a cosigned checkpoint note"):
            accept_cosignature(dep.audit, witnesses, "hello\n")
        assert accept_cosignature(dep.audit, witnesses, good).recorded == "new"


def test_a_flood_of_later_cosignatures_writes_once_a_minute_and_the_past_is_refused(
    home: Path, tmp_path: Path
) -> None:
    """A configured witness (or whoever holds its key) posting a second later each time
    changes the kept row at most once per MIN_REFRESH_SECONDS; a replay changes nothing; a
    cosignature dated before the log signed the checkpoint is refused; a cosignature of
    another root for a kept size is still a Conflict, not a quiet repeat."""
    from privplate.audit.cosigners import MIN_REFRESH_SECONDS

    cosigner = create_witness_key(tmp_path / "w.key", "w1")
    _configure(home, [cosigner.vkey()])
    with Deployment.open(home) as dep:
        dep.audit.record(actor="test", action="test.first")
        signed = dep.audit.sign_if_grown()
        assert signed is not None
        witnesses = configured_witnesses(dep.settings.audit.witnesses)
        t0 = int(time.time())
        with pytest.raises(InvalidRequest, match="before this log signed"):
            accept_cosignature(dep.audit, witnesses, _note(dep, cosigner, t0 - 2 * 3600))
        before = dep.audit.size()
        recorded = [
            accept_cosignature(dep.audit, witnesses, _note(dep, cosigner, t0 + i)).recorded
            for i in range(3 * MIN_REFRESH_SECONDS + 1)
        ]
        assert recorded.count("new") == 1 and recorded.count("refreshed") == 3
        assert dep.audit.size() == before + 1  # one audit entry, the first
        # A replay of the first (published on the checkpoint, so anyone has it): nothing.
        assert accept_cosignature(dep.audit, witnesses, _note(dep, cosigner, t0)).recorded == (
            "unchanged"
        )
        with dep.db.read() as conn:
            (kept,) = conn.execute(AuditCosignature.__table__.select()).all()
        assert kept.timestamp == t0 + 3 * MIN_REFRESH_SECONDS
        root = base64.b64encode(signed.root).decode()
        text = (
            _note(dep, cosigner, t0)
            .split("\n\n")[0]
            .replace(root, base64.b64encode(bytes(32)).decode())
            + "\n"
        )
        with pytest.raises(Conflict, match="never signed"):
            accept_cosignature(
                dep.audit, witnesses, text + "\n" + cosigner.cosign(text, t0).line().render()
            )


def test_the_route_bounds_the_body_and_answers_plainly(api: object) -> None:
    from tests.api_support import Api

    assert isinstance(api, Api)
    url = "/.well-known/privplate/cosignature"
    big = api.client.post(url, content=b"x" * 5000)
    assert big.status_code == 400 and "at most 4096 bytes" in big.text
    plain = api.client.post(url, content=b"not a note\n")
    assert plain.status_code == 400 and "not a cosigned checkpoint note" in plain.text


def test_verify_fails_on_an_edited_cosignature(home: Path, witnessed: tuple[str, Witness]) -> None:
    _, witness = witnessed
    done = witness.run_once()
    with Deployment.open(home) as dep, dep.db.write() as conn:
        conn.execute(update(AuditCosignature).values(timestamp=done.cosignature.timestamp - 1))
    result = runner.invoke(cli, ["audit", "verify", "--dir", str(home)])
    assert result.exit_code == 1
    assert "cosignature by witness clerk.example/w1" in result.output
    assert "does not verify (edited in the database)" in result.output


def test_the_verify_api_lists_the_witnesses(home: Path, witnessed: tuple[str, Witness]) -> None:
    from fastapi.testclient import TestClient

    from tests.api_support import make_users

    _, witness = witnessed
    done = witness.run_once()
    with Deployment.open(home) as dep:
        keys, _ = make_users(dep)
    from privplate.identity.roles import Role

    with TestClient(create_app(home, run_scheduler=False)) as client:
        answer = client.get(
            "/audit/verify", headers={"Authorization": f"Bearer {keys[Role.AUDITOR]}"}
        ).json()
    assert answer["ok"] is True
    (listed,) = answer["witnesses"]
    assert listed["name"] == "clerk.example/w1" and listed["configured"] is True
    assert [c["tree_size"] for c in listed["cosigned"]] == [done.tree_size]


# -- TLS -------------------------------------------------------------------------------------


def test_a_self_signed_server_needs_its_certificate(
    home: Path, tmp_path: Path, witnessed: tuple[str, Witness]
) -> None:
    _, witness = witnessed
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ed25519", "-nodes", "-days", "1",
            "-subj", "/CN=privplate test", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with served(home, ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        plain = Witness(
            server=url,
            log_key=witness.log.vkey(),
            cosigner=witness.cosigner,
            state_path=witness.state_path,
        )
        with pytest.raises(ServerUnavailable, match="--ca FILE"):
            plain.run_once()
        pinned = Witness(
            server=url,
            log_key=witness.log.vkey(),
            cosigner=witness.cosigner,
            state_path=witness.state_path,
            ca_file=cert,
        )
        assert pinned.run_once().recorded == "new"


def test_cosignature_dataclass_round_trips() -> None:
    c = Cosignature("w", 0x01020304, 5, bytes(64))
    assert parse_cosignature(c.line()) == c


def test_the_migration_matches_the_model_and_downgrades(home: Path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    from privplate.store.database import MIGRATIONS_DIR
    from privplate.store.models import Base

    with Deployment.open(home) as dep:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with dep.db.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0013_search_approvals")
            assert "audit_cosignatures" not in inspect(conn).get_table_names()
            command.upgrade(cfg, "head")
            conn.commit()
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    assert [d for d in diffs if "audit_cosignatures" in repr(d)] == []


def test_the_witness_runs_with_the_core_install_only(
    home: Path, tmp_path: Path, witnessed: tuple[str, Witness]
) -> None:
    """The clerk's box has `pip install privplate`: the witness command must not import the
    server extra (FastAPI, uvicorn, httpx) on its way."""
    import sys

    url, witness = witnessed
    blocked = ("fastapi", "starlette", "uvicorn", "httpx", "apscheduler", "jinja2")
    script = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # importing it raises ImportError\n"
        "from privplate.cli.main import main\n"
        "sys.argv = ['privplate', *sys.argv[1:]]\n"
        "main()\n"
    )
    done = subprocess.run(
        [
            sys.executable, "-c", script, "audit", "witness", "--server", url,
            "--log-key", witness.log.vkey(), "--key", str(tmp_path / "witness.key"),
            "--state", str(tmp_path / "core-state.json"), "--once",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "first checkpoint seen" in done.stdout
