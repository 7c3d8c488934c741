"""An edge's link cut and restored for real (tests/hosts.py): `privplate serve` on the server
host, and two edge hosts each running `privplate edge run` with its own spool, reading a live
camera on its own network (tests/camera_stream.py: real photos from ../shared/data at a
camera's pace). Edge 1's link is cut for CUT_SECONDS while both keep reading plates: its
uploads time out and its reads wait in its spool, while edge 2's keep arriving. Once the
link is back, edge 1's spool drains, and every read either edge made is stored exactly once:
per camera, per device (the server's batch receipts) and in the transparency counts.

The figures (reads made during the cut, the backlog, seconds from the restore to an empty
spool) are printed: run with -s to see them.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from privplate.deployment import Deployment
from privplate.devices.registry import register_device
from privplate.edge.runtime import write_device_key
from privplate.sealing import generate_keypair
from tests import hosts
from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, models_missing

hosts.require("the edge link-cut test")
pytestmark = pytest.mark.skipif(models_missing() is not None, reason=str(models_missing()))

#: The issue's cut is 60 s; this one is long enough for uploads to time out more than once.
CUT_SECONDS = 10.0
#: Edge 1's: well below the cut, so an upload during it fails by timeout. Edge 2 keeps the
#: default (30 s): a slow answer on a loaded machine must not pass for an effect of the cut.
UPLINK_TIMEOUT = 3.0
#: Each camera's photos, a car every 1/FPS seconds.
PHOTOS, FPS = 40, 2.0
CAMERA = Path(__file__).with_name("camera_stream.py")
CAMERA_PORT = 8554
SUMMARY = re.compile(r"(\d+) frames, (\d+) reads, .*?; (\d+) reads waiting in the spool")


@dataclass
class EdgeHost:
    """An edge host: its camera, its `privplate edge run`, and what it said."""

    host: hosts.Host
    device: str
    camera: str
    home: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.home / "edge.log"

    def start(self, photos: Path, env: dict[str, str], bed: hosts.Bed) -> None:
        camera = [sys.executable, str(CAMERA), str(photos), str(CAMERA_PORT), str(FPS)]
        self.procs.append(
            self.host.popen(camera, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        bed.wait_listening(self.host, "127.0.0.1", CAMERA_PORT, proc=self.procs[0])
        argv = [hosts.PRIVPLATE, "edge", "run", "--source", f"http://127.0.0.1:{CAMERA_PORT}/"]
        argv += ["--camera", self.camera, "--dir", str(self.home), "--no-display"]
        with self.log.open("wb") as out:
            self.procs.append(self.host.popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env))

    @property
    def edge(self) -> subprocess.Popen[bytes]:
        return self.procs[1]

    def stop(self) -> int:
        """Stop as an operator does (Ctrl-C): the edge closes its tracks, sends what waits,
        prints its summary. The reads it made."""
        self.edge.send_signal(signal.SIGINT)
        assert self.edge.wait(timeout=120) == 0, self.said()
        summary = SUMMARY.search(self.said())
        assert summary is not None, self.said()
        assert summary.group(3) == "0", self.said()
        return int(summary.group(2))

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def depth(self) -> int:
        """Reads waiting in the edge's spool (read beside the running edge, read-only)."""
        return self._count("reads")

    def set_aside(self) -> int:
        return self._count("set_aside")

    def _count(self, table: str) -> int:
        spool = self.home / "edge" / "spool.db"
        if not spool.exists():
            return 0
        conn = sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=30)
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            conn.close()

    def said(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def bed() -> Iterator[hosts.Bed]:
    with hosts.bed("edge1", "edge2") as made:
        yield made


def _register(home: Path, edges: list[EdgeHost]) -> None:
    """Each edge's camera and device key, registered as an administrator does."""
    with Deployment.open(home, actor="test") as dep:
        for edge in edges:
            dep.add_camera(edge.camera)
            key = write_device_key(edge.home / "keys" / "device.key", edge.device)
            register_device(
                db=dep.db,
                audit=dep.audit,
                actor="test",
                device_id=edge.device,
                public_key=key.public_key,
                cameras=[edge.camera],
            )


def _photos(folder: Path, region: str) -> Path:
    folder.mkdir()
    for row in labelled_rows(region, PHOTOS):
        (folder / Path(row["filename"]).name).symlink_to(ENDTOEND / row["filename"])
    return folder


def _stored(dep: Deployment, camera: str) -> dict[uuid.UUID, datetime]:
    """When each read the server holds for ``camera`` was observed (a read with alternates
    has a row per token: it counts once)."""
    with dep.db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT read_id, min(observed_at) FROM reads WHERE camera_id = :c GROUP BY read_id"
            ),
            {"c": camera},
        ).all()
    return {_uuid(r[0]): _utc(r[1]) for r in rows}


def _receipts(dep: Deployment) -> dict[str, tuple[int, int]]:
    """(reads inserted, reads that were already stored) per device, from its batch receipts."""
    with dep.db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT device_id, sum(inserted), sum(duplicates) FROM device_batches "
                "GROUP BY device_id"
            )
        ).all()
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def _counted(dep: Deployment) -> dict[str, int]:
    with dep.db.read() as conn:
        rows = conn.execute(
            text("SELECT camera_id, sum(reads) FROM read_counts GROUP BY camera_id")
        ).all()
    return {r[0]: int(r[1]) for r in rows}


def _uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, bytes):
        return uuid.UUID(bytes=value)
    return uuid.UUID(str(value))


def _utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _until(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` held."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - started


def _env(server_url: str, **edge: str) -> dict[str, str]:
    _, evidence_public = generate_keypair()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPLATE_")}
    return (
        env
        | {
            "COLUMNS": "400",
            "PRIVPLATE_MODELS_DIR": str(MODELS_DIR),
            "PRIVPLATE_EVIDENCE_PUBLIC_KEY": evidence_public.hex(),  # reads carry sealed evidence
            "PRIVPLATE_EDGE__SERVER_URL": server_url,
        }
        | {f"PRIVPLATE_EDGE__{k.upper()}": v for k, v in edge.items()}
    )


def test_an_edge_whose_link_is_cut_loses_and_duplicates_nothing(
    bed: hosts.Bed, home: Path, database_url: str, tmp_path: Path
) -> None:
    one = EdgeHost(bed.hosts["edge1"], "edge-1", "gate-1", tmp_path / "edge1")
    two = EdgeHost(bed.hosts["edge2"], "edge-2", "gate-2", tmp_path / "edge2")
    _register(home, [one, two])
    server_env = hosts.database_env(database_url)
    server_env["PRIVPLATE_SERVER__RUN_PURGE_SCHEDULER"] = "false"
    server = hosts.Server(bed, home, server_env, tmp_path / "server.log")
    dep = Deployment.open(home, actor="test")
    try:
        server.start()
        timeout = {"uplink_timeout_seconds": str(UPLINK_TIMEOUT)}
        one.start(_photos(tmp_path / "photos-eu", "eu"), _env(server.url, **timeout), bed)
        two.start(_photos(tmp_path / "photos-us", "us"), _env(server.url), bed)
        _until(
            "both edges delivered a read",
            lambda: bool(_stored(dep, one.camera) and _stored(dep, two.camera)),
            timeout=180,
        )

        bed.cut(one.host)
        cut_at = datetime.now(UTC)
        time.sleep(2.0)  # a batch whose bytes had all arrived before the cut may still commit
        held, others = len(_stored(dep, one.camera)), len(_stored(dep, two.camera))
        time.sleep(CUT_SECONDS - 2.0)
        backlog = one.depth()
        assert len(_stored(dep, one.camera)) == held, "a read crossed the cut link"
        assert len(_stored(dep, two.camera)) > others, "edge 2 stalled while edge 1 was cut"
        assert one.edge.poll() is None and two.edge.poll() is None, one.said() + two.said()
        bed.restore(one.host)
        restored_at = datetime.now(UTC)
        drained = _until("edge 1's spool drained after the restore", lambda: not one.depth(), 120)
        time.sleep(3.0)  # reads keep flowing after the drain

        made = {one.device: one.stop(), two.device: two.stop()}
        stored = {e.device: _stored(dep, e.camera) for e in (one, two)}
        receipts, counted = _receipts(dep), _counted(dep)
    finally:
        one.kill()
        two.kill()
        server.stop()
        dep.close()

    during = sum(1 for at in stored[one.device].values() if cut_at <= at < restored_at)
    failed = one.said().count("uplink: server unreachable")
    print(  # noqa: T201 - the figures the issue asks for (pytest -s)
        f"\nedge 1's link cut for {CUT_SECONDS:.0f} s: it made {during} reads during the cut, "
        f"{backlog} waited in its spool at the restore, {failed} uploads failed; its spool was "
        f"empty {drained:.1f} s after the restore. Reads made {made}, stored "
        f"{ {d: len(s) for d, s in stored.items()} }"
    )
    for edge in (one, two):
        # Every read the edge made is stored, once: per camera, per device, and in the counts.
        assert len(stored[edge.device]) == made[edge.device], edge.said()
        assert receipts[edge.device] == (made[edge.device], 0)  # (inserted, already stored)
        assert counted[edge.camera] == made[edge.device]
        assert edge.depth() == 0 and edge.set_aside() == 0
    assert during > 0 and backlog > 0, "edge 1 stopped reading while its link was cut"
    # The cut shows as timeouts, as a cut link does, never as a refusal; edge 2 never failed.
    assert "server unreachable for POST /ingest (TimeoutError)" in one.said(), one.said()
    assert "ConnectionRefusedError" not in one.said()
    # Registered by hand, edge 2 pins no server key and says so once; nothing else.
    trouble = [
        line
        for line in two.said().splitlines()
        if "uplink:" in line and "pins no server key" not in line
    ]
    assert trouble == [], two.said()
