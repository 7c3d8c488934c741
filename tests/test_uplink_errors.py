"""How the edge's uplink names a failed send: the cause (refused, timed out, an answer cut
short), and always as a retryable UplinkError, so the uplink thread never dies on one."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from privplate.devices import DeviceKey
from privplate.edge.uplink import DeviceClient, UplinkError


@pytest.fixture
def cut_short() -> Iterator[str]:
    """A server that promises 100 bytes of answer, sends one, and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    thread.join(timeout=5)
    listener.close()


def test_an_answer_cut_short_is_a_retryable_failure(cut_short: str) -> None:
    client = DeviceClient(cut_short, DeviceKey.generate("edge-1"), timeout=5)
    with pytest.raises(UplinkError, match=r"unreachable for POST /ingest \(IncompleteRead\)") as e:
        client.request("POST", "/ingest", b"{}")
    assert not e.value.permanent


def test_a_refused_connection_is_named_as_such() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed on leaving: nothing listens there any more
    client = DeviceClient(f"http://127.0.0.1:{port}", DeviceKey.generate("edge-1"), timeout=5)
    with pytest.raises(UplinkError, match=r"\(ConnectionRefusedError\)") as e:
        client.request("GET", "/device/epoch")
    assert not e.value.permanent
