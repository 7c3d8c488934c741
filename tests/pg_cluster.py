"""A PostgreSQL server of the test's own (initdb in a temporary folder, its own port), so a
fault test can restart or kill it without touching the machine's shared PostgreSQL that the rest
of the suite uses. Importable by benchmarks (no pytest at import time)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

BIN = Path("/usr/lib/postgresql")


def postgres_bin() -> Path | None:
    """Where Debian keeps initdb and pg_ctl (the newest version installed), if anywhere."""
    if not BIN.is_dir():
        return None
    versions = sorted((p for p in BIN.iterdir() if (p / "bin" / "initdb").exists()), key=_version)
    return versions[-1] / "bin" if versions else None


def _version(path: Path) -> int:
    return int(path.name) if path.name.isdigit() else 0


def _as_postgres() -> list[str]:
    # initdb refuses to run as root; the server must run as the owner of its data folder.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PrivateCluster:
    """``start()``, ``restart()``, ``kill()`` and ``stop()`` a PostgreSQL of our own."""

    def __init__(self, root: Path, port: int, *, settings: dict[str, str] | None = None) -> None:
        found = postgres_bin()
        if found is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bin = found
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.port = port
        self.settings = {
            "max_connections": "200",
            "shared_buffers": "256MB",
            "fsync": "on",
            "synchronous_commit": "on",
            **(settings or {}),
        }
        self.log = root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in (self.data, self.sockets):
            folder.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            for folder in (self.data, self.sockets):
                shutil.chown(folder, "postgres")
        subprocess.run(
            [
                *_as_postgres(),
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        self.log.touch()
        if os.geteuid() == 0:
            shutil.chown(self.log, "postgres")

    def _options(self) -> str:
        extra = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        return f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 {extra}"

    def start(self) -> None:
        subprocess.run(
            [
                *_as_postgres(),
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                self._options(),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user="postgres",
                    dbname="postgres",
                    connect_timeout=2,
                ) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [
                *_as_postgres(),
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "stop",
            ],
            check=False,
            capture_output=True,
        )

    def restart(self, mode: str = "fast") -> None:
        """A real restart: every connection is cut; the data survive (fast: clean shutdown;
        immediate: like a crash, recovered from the WAL at start)."""
        self.stop(mode)
        self.start()

    def __enter__(self) -> PrivateCluster:
        self.init()
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop("immediate")
