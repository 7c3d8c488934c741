"""The test bed of tests/hosts.py: a cut link times out (never a refusal or a quick "no route"),
the other hosts keep their link, a restored link carries on, and a crashed run's namespaces
are cleaned up by the next bed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests import hosts

hosts.require("the test-bed tests")
PORT = 8471


@pytest.fixture
def listening() -> Iterator[tuple[hosts.Bed, hosts.Host, hosts.Host]]:
    with hosts.bed("alpha", "beta") as made:
        server = made.server.popen(
            [sys.executable, "-m", "http.server", str(PORT), "--bind", made.server.address],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            made.wait_listening(made.hosts["alpha"], made.server.address, PORT, proc=server)
            yield made, made.hosts["alpha"], made.hosts["beta"]
        finally:
            server.terminate()
            server.wait(timeout=20)


def test_a_cut_link_times_out_and_the_other_host_is_unaffected(
    listening: tuple[hosts.Bed, hosts.Host, hosts.Host],
) -> None:
    bed, alpha, beta = listening
    address = bed.server.address
    assert alpha.connect_error(address, PORT) is None
    assert beta.connect_error(address, PORT) is None
    bed.cut(alpha)
    # Longer than ARP's three probes (3 s): a cut that let ARP fail would say EHOSTUNREACH.
    assert alpha.connect_error(address, PORT, timeout=4.0) == "TimeoutError"
    assert beta.connect_error(address, PORT) is None
    # Nothing listens on another port: beta is refused at once, which a cut never is.
    assert beta.connect_error(address, PORT + 1) == "ConnectionRefusedError"
    bed.restore(alpha)
    assert alpha.connect_error(address, PORT, timeout=5.0) is None


def test_a_connection_begun_during_a_cut_opens_once_the_link_is_back(
    listening: tuple[hosts.Bed, hosts.Host, hosts.Host],
) -> None:
    bed, alpha, _ = listening
    bed.cut(alpha)
    probe = (
        "import socket\n"
        f"socket.create_connection(({bed.server.address!r}, {PORT}), timeout=20).close()\n"
    )
    waiting = alpha.popen([sys.executable, "-c", probe])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=2)  # still retransmitting its SYN
        bed.restore(alpha)
        assert waiting.wait(timeout=20) == 0
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()


def test_a_crashed_runs_namespaces_are_deleted_by_the_next_bed() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = f"{hosts.PREFIX}-{gone.pid}-beef-server"
    hosts.ip("netns", "add", stale)
    try:
        with hosts.bed("alpha") as made:
            names = hosts._namespaces()
            assert stale not in names
            assert made.server.namespace in names and made.hosts["alpha"].namespace in names
    finally:
        subprocess.run([hosts.IP, "netns", "del", stale], capture_output=True, check=False)
    assert made.server.namespace not in hosts._namespaces()
