"""Real `privplate serve` processes on one deployment's database, for the multi-worker and
multi-host tests (the README's city setup: one process per container behind a balancer)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PRIVPLATE = str(Path(sys.executable).parent / "privplate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    """One running `privplate serve`: where it answers, and its process (to kill -9 it)."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def servers(
    home: Path, count: int, settings: dict[str, str], *, wait_path: str = "/readyz"
) -> Iterator[list[str]]:
    """``count`` `privplate serve` processes on ``home``'s database, with extra settings,
    each answering 200 at ``wait_path`` (ready, by default) before this yields."""
    with cluster(home, count, settings, wait_path=wait_path) as running:
        yield [s.url for s in running]


@contextmanager
def cluster(
    home: Path, count: int, settings: dict[str, str], *, wait_path: str = "/readyz"
) -> Iterator[list[Server]]:
    """As :func:`servers`, yielding each server's process and log file too."""
    env = {
        **os.environ,
        "PRIVPLATE_SERVER__RUN_PURGE_SCHEDULER": "false",
        **{f"PRIVPLATE_{k}": v for k, v in settings.items()},
    }
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for i in range(count):
            port = free_port()
            log = (home / f"serve-{i}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [PRIVPLATE, "serve", "--dir", str(home), "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            for _ in range(600):
                assert proc.poll() is None, (home / "serve-0.log").read_text()
                try:
                    if httpx.get(f"{url}{wait_path}", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            else:
                pytest.fail(f"server {url} did not start")
        yield [
            Server(url, proc, home / f"serve-{i}.log")
            for i, (url, proc) in enumerate(zip(urls, procs, strict=True))
        ]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
