"""Test hosts: Linux network namespaces on one bridge, so a link can be cut for real.

The *server host* is a namespace holding a bridge with the server's address; every other host
is a namespace of its own, joined to that bridge by a veth pair and nothing else. ``cut``
sets the bridge's end of a host's veth down: the host's end loses carrier and what either
side sends is dropped, so TCP times out (a connect hangs in its SYN retransmits, a request
in its data retransmits) instead of being refused. Neighbour (ARP) entries on both sides are
permanent, so the kernel never turns a cut into a quick "no route to host" once ARP gives up;
``restore`` sets the end up again and connections still retransmitting carry on.

Names are unique per run (``pph-<pid>-<tag>-<host>``; the pid says whose they are), and a bed
first deletes the namespaces of runs whose process is gone (a crashed run leaves them). The
veth pairs are made inside the namespaces, so deleting the namespaces removes everything.
Every bed has the same addresses: its namespaces reach nothing else, so beds side by side
never meet.

PostgreSQL is reached from a host through its Unix socket (``database_env``): a namespace has
no route to the machine's 127.0.0.1, but a socket file is reachable from any namespace.

Needs root and iproute2's ``ip netns``. Importable without pytest (benchmarks):
``require`` imports it only to skip.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

IP = shutil.which("ip") or "ip"
PRIVPLATE = str(Path(sys.executable).parent / "privplate")
PREFIX = "pph"
PG_SOCKET_DIR = "/var/run/postgresql"
NETWORK = "10.203.0"
SERVER_ADDRESS = f"{NETWORK}.1"
BRIDGE = "br0"
#: Set, not left to the kernel: a bridge takes a port's MAC unless told otherwise, which would
#: change under the hosts' permanent neighbour entries as ports are added.
SERVER_MAC = "02:70:70:00:00:01"
#: A host's name becomes part of its port's name on the bridge (at most 15 characters).
_HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,12}$")
_OURS = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]+-")


def unavailable() -> str | None:
    """Why hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    probe = subprocess.run([IP, "netns", "list"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "ip netns is unavailable here"
    return None


def require(what: str) -> None:
    """Skip the calling test (or module) when hosts cannot be made; under CI, which runs as
    root, fail instead, naming ``what`` must run."""
    why = unavailable()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI must run {what}: {why}")
    import pytest  # here, not at the top: benchmarks import this module without pytest

    pytest.skip(why, allow_module_level=True)


def ip(*args: str) -> None:
    done = subprocess.run([IP, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


def _namespaces() -> list[str]:
    listed = subprocess.run([IP, "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale() -> list[str]:
    """Delete the namespaces of beds whose process has gone; the names deleted."""
    gone = []
    for name in _namespaces():
        match = _OURS.match(name)
        if match and not _alive(int(match.group(1))):
            subprocess.run([IP, "netns", "del", name], capture_output=True, check=False)
            gone.append(name)
    return gone


@dataclass(frozen=True)
class Host:
    """A namespace with one address; ``port`` is its veth end on the bridge ("" for the
    server host, which holds the bridge)."""

    name: str
    namespace: str
    address: str
    port: str = ""

    def argv(self, *command: str) -> list[str]:
        """``command`` run inside this host (``ip netns exec`` execs it: same pid, signals)."""
        return [IP, "netns", "exec", self.namespace, *command]

    def popen(self, command: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(*command), **kwargs)

    def run(
        self, command: Sequence[str], *, timeout: float = 60.0, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*command),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            **kwargs,
        )

    def connect_error(self, address: str, port: int, timeout: float = 1.0) -> str | None:
        """None if a TCP connection from this host to ``address:port`` opens within
        ``timeout``; else the error's class name (TimeoutError on a cut link)."""
        probe = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(({address!r}, {port}), timeout={timeout}).close()\n"
            "except OSError as exc:\n"
            "    print(type(exc).__name__)\n"
            "    sys.exit(1)\n"
        )
        done = self.run([sys.executable, "-c", probe], timeout=timeout + 30)
        return None if done.returncode == 0 else (done.stdout.strip() or done.stderr.strip())


@dataclass
class Bed:
    """The server host and the hosts added to it."""

    tag: str
    server: Host
    hosts: dict[str, Host] = field(default_factory=dict)

    def add(self, name: str) -> Host:
        if not _HOST_NAME.match(name) or name in self.hosts or name == self.server.name:
            raise ValueError(f"host name {name!r}: lower-case letters and digits, at most 13")
        index = len(self.hosts)
        if index >= 240:
            raise ValueError("at most 240 hosts on one bed")
        host = Host(
            name,
            f"{PREFIX}-{os.getpid()}-{self.tag}-{name}",
            f"{NETWORK}.{10 + index}",
            port=f"v-{name}",
        )
        mac = f"02:70:70:00:01:{index:02x}"
        ns, srv = host.namespace, self.server.namespace
        ip("netns", "add", ns)
        self.hosts[name] = host
        # Both ends made where they live: nothing of the pair is ever in the root namespace.
        ip("-n", srv, "link", "add", host.port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", srv, "link", "set", host.port, "master", BRIDGE)
        ip("-n", ns, "link", "set", "eth0", "address", mac)
        ip("-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        permanent = ("nud", "permanent")
        ip("-n", ns, "neigh", "replace", self.server.address, "lladdr", SERVER_MAC, "dev", "eth0",
           *permanent)  # fmt: skip
        ip("-n", srv, "neigh", "replace", host.address, "lladdr", mac, "dev", BRIDGE, *permanent)
        for link in ("lo", "eth0"):
            ip("-n", ns, "link", "set", link, "up")
        ip("-n", srv, "link", "set", host.port, "up")
        return host

    def cut(self, host: Host) -> None:
        """Nothing passes between ``host`` and the bridge until ``restore``; TCP times out."""
        ip("-n", self.server.namespace, "link", "set", host.port, "down")

    def restore(self, host: Host) -> None:
        ip("-n", self.server.namespace, "link", "set", host.port, "up")

    def wait_listening(
        self,
        src: Host,
        address: str,
        port: int,
        *,
        proc: subprocess.Popen[bytes] | None = None,
        log: Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        """Until ``src`` can open a connection to ``address:port`` (``proc``, the listener,
        must stay alive meanwhile; its ``log`` is shown if it does not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the listener on {address}:{port} died: {_tail(log)}")
            if src.connect_error(address, port, timeout=1.0) is None:
                return
            time.sleep(0.1)
        raise AssertionError(f"nothing listens on {address}:{port}: {_tail(log)}")

    def close(self) -> None:
        # Deleting a namespace deletes the veth ends in it, and with them the pairs.
        for host in [*self.hosts.values(), self.server]:
            subprocess.run([IP, "netns", "del", host.namespace], capture_output=True, check=False)


def _tail(log: Path | None) -> str:
    return log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""


@contextmanager
def bed(*names: str) -> Iterator[Bed]:
    """A server host and one host per name on its bridge, deleted on exit."""
    clean_stale()
    tag = secrets.token_hex(2)
    server = Host("server", f"{PREFIX}-{os.getpid()}-{tag}-server", SERVER_ADDRESS)
    made = Bed(tag, server)
    try:
        ip("netns", "add", server.namespace)
        ns = server.namespace
        ip("-n", ns, "link", "add", BRIDGE, "address", SERVER_MAC, "type", "bridge")
        ip("-n", ns, "addr", "add", f"{SERVER_ADDRESS}/24", "dev", BRIDGE)
        for link in ("lo", BRIDGE):
            ip("-n", ns, "link", "set", link, "up")
        for name in names:
            made.add(name)
        yield made
    finally:
        made.close()


def database_env(database_url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a privplate process inside a host: none of the caller's PRIVPLATE_*
    settings, and on PostgreSQL ``database_url`` through the Unix socket. A SQLite deployment
    needs nothing: every host sees the same files."""
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith("PRIVPLATE_")}
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(host=None, port=None).update_query_dict({"host": PG_SOCKET_DIR})
        env["PRIVPLATE_DATABASE_URL"] = url.render_as_string(hide_password=False)
    return env


class Server:
    """`privplate serve` of a deployment on a host, ready once another host can connect."""

    def __init__(
        self,
        bed: Bed,
        home: Path,
        env: Mapping[str, str],
        log: Path,
        *,
        port: int = 8470,
        probe_from: Host | None = None,
    ) -> None:
        self.bed, self.home, self.env, self.log, self.port = bed, home, dict(env), log, port
        self.host = bed.server
        self.probe_from = probe_from
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host.address}:{self.port}"

    def start(self) -> None:
        argv = [PRIVPLATE, "serve", "--dir", str(self.home)]
        argv += ["--host", self.host.address, "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.proc = self.host.popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        src = self.probe_from or next(iter(self.bed.hosts.values()), self.host)
        self.bed.wait_listening(src, self.host.address, self.port, proc=self.proc, log=self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# -- a host beside the machine's own namespace ---------------------------------------------------

PEER_NETWORK = "10.204"


@dataclass(frozen=True)
class Peer:
    """A host joined by one veth pair to the machine's own (root) namespace, for a process
    there to reach a server the caller runs as usual (bound to 0.0.0.0, or ``server_address``)
    while the rest of a run keeps using loopback. ``cut`` sets the root namespace's end down:
    the host's end loses carrier, so what it sends is dropped and TCP times out."""

    host: Host
    server_address: str
    root_link: str

    def cut(self) -> None:
        ip("link", "set", self.root_link, "down")

    def restore(self) -> None:
        ip("link", "set", self.root_link, "up")


@contextmanager
def peer(name: str, index: int = 0) -> Iterator[Peer]:
    """A namespace ``name`` whose eth0 (10.204.<index>.2/30) is paired with a link in the root
    namespace (10.204.<index>.1/30); deleted on exit, and with it the pair."""
    if not _HOST_NAME.match(name) or not 0 <= index < 250:
        raise ValueError(f"peer {name!r} #{index}: a host name and an index below 250")
    clean_stale()
    tag = secrets.token_hex(2)
    namespace = f"{PREFIX}-{os.getpid()}-{tag}-{name}"
    root_link = f"{PREFIX}{tag}{index}"  # at most 15 characters, unique per run
    server, address = f"{PEER_NETWORK}.{index}.1", f"{PEER_NETWORK}.{index}.2"
    root_mac, host_mac = f"02:70:71:00:{index:02x}:01", f"02:70:71:00:{index:02x}:02"
    host = Host(name, namespace, address, port=root_link)
    ip("netns", "add", namespace)
    try:
        ip("link", "add", root_link, "address", root_mac, "type", "veth",
           "peer", "name", "eth0", "address", host_mac, "netns", namespace)  # fmt: skip
        ip("addr", "add", f"{server}/30", "dev", root_link)
        ip("-n", namespace, "addr", "add", f"{address}/30", "dev", "eth0")
        permanent = ("nud", "permanent")
        ip("neigh", "replace", address, "lladdr", host_mac, "dev", root_link, *permanent)
        ip("-n", namespace, "neigh", "replace", server, "lladdr", root_mac, "dev", "eth0",
           *permanent)  # fmt: skip
        for link in ("lo", "eth0"):
            ip("-n", namespace, "link", "set", link, "up")
        ip("link", "set", root_link, "up")
        yield Peer(host, server, root_link)
    finally:
        # Deleting the namespace deletes its end, and a veth pair goes with either end.
        subprocess.run([IP, "netns", "del", namespace], capture_output=True, check=False)
        subprocess.run([IP, "link", "del", root_link], capture_output=True, check=False)
