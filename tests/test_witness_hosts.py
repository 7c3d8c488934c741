"""Two hosts: a real `privplate serve` in one network namespace, the witness in another, joined
by a veth pair (nothing but that link between them). The witness cosigns twice as the log
grows; then an insider holding the audit key replaces the history with a longer one, signs it
and restarts the server, and the witness refuses, exits non-zero and names the sizes, once
and in --interval mode.

Needs root and `ip netns` (iproute2); skipped without them, except under CI, which runs as
root and must run it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from privplate.audit.witness import create_witness_key
from privplate.deployment import Deployment
from privplate.store.models import AuditCheckpoint, AuditEntry
from tests.conftest import ON_POSTGRES

IP = shutil.which("ip")
PRIVPLATE = str(Path(sys.executable).parent / "privplate")
PORT = 8470
#: Where Debian's PostgreSQL listens on a Unix socket: the server's namespace has no route to
#: the host's 127.0.0.1, but a socket file is reachable from any network namespace.
PG_SOCKET_DIR = "/var/run/postgresql"


def _usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if IP is None:
        return "needs iproute2's ip"
    probe = subprocess.run([IP, "netns", "list"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "ip netns is unavailable here"
    return None


_why = _usable()
if _why is not None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI must run the two-host witness test: {_why}")
    pytest.skip(_why, allow_module_level=True)


def ip(*args: str) -> None:
    subprocess.run([str(IP), *args], check=True, capture_output=True)


@dataclass
class Hosts:
    server_ns: str
    witness_ns: str
    server_addr: str

    def run_in(self, ns: str, *argv: str) -> list[str]:
        return [str(IP), "netns", "exec", ns, *argv]


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    tag = secrets.token_hex(3)
    server_ns, witness_ns = f"pp-srv-{tag}", f"pp-wit-{tag}"
    veth_s, veth_w = f"pps{tag}", f"ppw{tag}"  # at most 15 characters (IFNAMSIZ)
    # A /30 of its own per run, so runs side by side never share addresses.
    net = f"10.{64 + secrets.randbelow(180)}.{secrets.randbelow(256)}.{4 * secrets.randbelow(64)}"
    base = net.rsplit(".", 1)
    server_addr = f"{base[0]}.{int(base[1]) + 1}"
    witness_addr = f"{base[0]}.{int(base[1]) + 2}"
    try:
        ip("netns", "add", server_ns)
        ip("netns", "add", witness_ns)
        ip("link", "add", veth_s, "type", "veth", "peer", "name", veth_w)
        ip("link", "set", veth_s, "netns", server_ns)
        ip("link", "set", veth_w, "netns", witness_ns)
        ip("-n", server_ns, "addr", "add", f"{server_addr}/30", "dev", veth_s)
        ip("-n", witness_ns, "addr", "add", f"{witness_addr}/30", "dev", veth_w)
        for ns, dev in ((server_ns, veth_s), (witness_ns, veth_w)):
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield Hosts(server_ns, witness_ns, server_addr)
    finally:
        # Deleting a namespace deletes the veth end inside it, and with it the pair.
        for ns in (server_ns, witness_ns):
            subprocess.run([str(IP), "netns", "del", ns], capture_output=True, check=False)
        subprocess.run([str(IP), "link", "del", veth_s], capture_output=True, check=False)


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")}
    if ON_POSTGRES:
        url = make_url(database_url).set(host=None, port=None)
        url = url.update_query_dict({"host": PG_SOCKET_DIR})
        env["PRIVPLATE_DATABASE_URL"] = url.render_as_string(hide_password=False)
    return env


class Server:
    def __init__(self, hosts: Hosts, home: Path, database_url: str, log: Path) -> None:
        self.hosts, self.home, self.log = hosts, home, log
        self.env = _env(database_url)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.hosts.run_in(
                    self.hosts.server_ns,
                    PRIVPLATE,
                    "serve",
                    "--dir",
                    str(self.home),
                    "--host",
                    self.hosts.server_addr,
                    "--port",
                    str(PORT),
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        # Ready when the witness's host can open a connection to it, across the link.
        probe = (
            "import socket,sys\n"
            f"socket.create_connection(('{self.hosts.server_addr}', {PORT}), timeout=1).close()"
        )
        for _ in range(300):
            if self.proc.poll() is not None:
                raise AssertionError("privplate serve died: " + self.log.read_text())
            done = subprocess.run(
                self.hosts.run_in(self.hosts.witness_ns, sys.executable, "-c", probe),
                capture_output=True,
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("privplate serve did not listen: " + self.log.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _configure(home: Path, vkey: str) -> None:
    config = home / "privplate.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + f"\n[audit]\ncheckpoint_interval_minutes = 0\nwitnesses = {json.dumps([vkey])}\n"
        + "\n[server]\nrun_purge_scheduler = false\n",
        encoding="utf-8",
    )


def _grow(home: Path, entries: int, action: str = "test.grow") -> int:
    with Deployment.open(home, actor="test") as dep:
        for i in range(entries):
            dep.audit.record(actor="test", action=action, details={"i": i})
        signed = dep.audit.sign_if_grown()
        assert signed is not None
        return signed.tree_size


def _rewrite(home: Path, longer_than: int) -> int:
    """History after entry #0 replaced by a longer one, MACed and signed with the same key."""
    with Deployment.open(home) as dep, dep.db.write() as conn:
        conn.execute(delete(AuditEntry).where(AuditEntry.seq >= 1))
        conn.execute(delete(AuditCheckpoint))
    rewritten = _grow(home, longer_than + 4, action="test.rewritten")
    assert rewritten > longer_than
    return rewritten


def _watch_until_refused(argv: list[str], folder: Path) -> tuple[int, str]:
    """Run the witness in --interval mode until it reports a refusal, then stop it (SIGTERM):
    its exit code and what it wrote to stderr (white space collapsed)."""
    out, err = folder / "watch.out", folder / "watch.err"
    with out.open("wb") as o, err.open("wb") as e:
        watcher = subprocess.Popen(argv, stdout=o, stderr=e, env={**os.environ, "COLUMNS": "400"})
    try:
        for _ in range(300):
            if "REFUSED" in err.read_text() or watcher.poll() is not None:
                break
            time.sleep(0.1)
        assert "REFUSED" in err.read_text(), err.read_text()
    finally:
        watcher.send_signal(signal.SIGTERM)
        code = watcher.wait(timeout=30)
    return code, " ".join(err.read_text().split())


def test_a_witness_on_another_host_catches_a_rewritten_log(
    hosts: Hosts, home: Path, database_url: str, tmp_path: Path
) -> None:
    key = tmp_path / "witness" / "witness.key"
    state = tmp_path / "witness" / "state.json"
    cosigner = create_witness_key(key, "clerk.springfield.example/witness")
    _configure(home, cosigner.vkey())
    with Deployment.open(home) as dep:
        log_key = dep.audit.signer.note_verifier.vkey()
    first = _grow(home, 2)
    server = Server(hosts, home, database_url, tmp_path / "server.log")

    def witness(*extra: str) -> list[str]:
        return hosts.run_in(
            hosts.witness_ns,
            PRIVPLATE,
            "audit",
            "witness",
            "--server",
            f"http://{hosts.server_addr}:{PORT}",
            "--log-key",
            log_key,
            "--key",
            str(key),
            "--state",
            str(state),
            *extra,
        )

    def once() -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")}
        return subprocess.run(
            witness("--once"),
            capture_output=True,
            text=True,
            env={**env, "COLUMNS": "400"},
            check=False,
            timeout=60,
        )

    try:
        server.start()
        done = once()
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"first checkpoint seen: {first} entries" in done.stdout
        second = _grow(home, 3)
        done = once()
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"log grew from {first} to {second} entries (consistency proof verified)" in (
            done.stdout
        )

        listed = subprocess.run(
            [PRIVPLATE, "audit", "verify", "--dir", str(home)],
            capture_output=True,
            text=True,
            env={**_env(database_url), "COLUMNS": "400"},
            check=False,
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert (
            "witness clerk.springfield.example/witness (configured): cosigned 2 sizes "
            f"({first}, {second})"
        ) in listed.stdout

        # The insider: stop the server, replace everything after entry #0 with a longer,
        # different history, signed with the same key (MACs and checkpoint), restart.
        server.stop()
        rewritten = _rewrite(home, longer_than=second)
        server.start()

        seen_before = state.read_bytes()
        done = once()
        assert done.returncode == 3, done.stdout + done.stderr
        said = " ".join((done.stdout + done.stderr).split())
        assert f"accepted {second} entries" in said, said
        assert f"now shows {rewritten} entries" in said, said
        assert "not cosigned" in said
        assert state.read_bytes() == seen_before

        # Watching (--interval): it keeps refusing, and says so at the end with its exit code.
        code, said = _watch_until_refused(witness("--interval", "1"), tmp_path)
        assert code == 3, said
        assert f"now shows {rewritten} entries" in said
    finally:
        server.stop()
