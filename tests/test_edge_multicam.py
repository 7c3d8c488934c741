"""One edge process, several cameras (`privplate edge run --config edge.toml`).

Three cameras in one process (a video of cars driving past, a video of a gate watched
through a region of interest with a distracting car outside it, a folder of photos), real
models and photos: every car gives exactly one read, on its own camera; a kill -9 in the
middle and a restart lose nothing and store nothing twice. Also: the edge.toml's checks and
the per-camera figures.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from privplate.cli.main import app
from privplate.deployment import Deployment
from privplate.errors import ConfigError
from tests import factories
from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, needs_models
from tests.privacy import hits_in_bytes, hits_in_files

FPS = 6.0
HOLD = 6  # frames per car
GAP = 6  # blank frames between cars: longer than the track window, so each car closes
ENV_TRACK = {"PRIVPLATE_EDGE__TRACK_SECONDS": "0.5"}
ROI = {"x": 0.5, "y": 0.0, "w": 0.5, "h": 1.0}


# -- edge.toml checks (no model needed) -------------------------------------------------------


def _load(tmp_path: Path, text: str) -> object:
    from privplate.edge.config import load_edge_config

    path = tmp_path / "edge.toml"
    path.write_text(text, encoding="utf-8")
    return load_edge_config(path)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('[[sources]]\ncamera = "a"\nsource = "x.avi"\nroi = { w = 0 }\n', "sources[0].roi.w"),
        (
            '[[sources]]\ncamera = "a"\nsource = "x.avi"\n'
            '[[sources]]\ncamera = "b"\nsource = "y.avi"\nroi = { x = 0.6, w = 0.5 }\n',
            "sources[1].roi: Value error, x + w must be at most 1",
        ),
        ('[[sources]]\ncamera = "a"\nsource = "x.avi"\nfps = 5\n', "sources[0].fps: Extra"),
        ('[[sources]]\ncamera = "a"\nsource = "x.avi"\nmax_fps = -1\n', "sources[0].max_fps"),
        ('[[sources]]\nsource = "x.avi"\n', "sources[0].camera: Field required"),
        ("sources = []\n", "sources: List should have at least 1 item"),
        (
            '[[sources]]\ncamera = "a"\nsource = "x.avi"\n[[sources]]\ncamera = "a"\n'
            'source = "y.avi"\n',
            "camera 'a' is given twice",
        ),
        ('[[sources]\ncamera = "a"\n', "not valid TOML"),
    ],
)
def test_a_wrong_edge_toml_names_the_file_the_source_and_the_field(
    tmp_path: Path, body: str, where: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, body)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'edge.toml'}: ")
    assert where in message, message


def test_an_edge_toml_error_never_repeats_a_source_url(tmp_path: Path) -> None:
    body = (
        '[[sources]]\ncamera = "a"\nsource = "rtsp://admin:hunter2@10.0.0.9/s"\n'
        'motion_threshold = "high"\n'
    )
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, body)
    assert "sources[0].motion_threshold" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_an_edge_toml_resolves_paths_beside_it_and_fills_defaults(tmp_path: Path) -> None:
    from privplate.edge.config import EdgeConfig, Roi
    from privplate.settings import EdgeSettings

    config = _load(
        tmp_path,
        '[[sources]]\ncamera = "a"\nsource = "videos/x.avi"\nmotion = false\n'
        '[[sources]]\ncamera = "b"\nsource = "rtsp://cam/s"\nmax_fps = 4\n'
        "roi = { x = 0.25, y = 0.5, w = 0.5, h = 0.5 }\n",
    )
    assert isinstance(config, EdgeConfig)
    first, second = config.sources
    assert first.source == str(tmp_path / "videos" / "x.avi")
    assert second.source == "rtsp://cam/s"
    edge = EdgeSettings(max_fps=10, motion_threshold=0.01)
    assert (first.fps(edge), first.gate_threshold(edge)) == (10, 0.0)  # motion off
    assert (second.fps(edge), second.gate_threshold(edge)) == (4, 0.01)
    assert second.roi == Roi(x=0.25, y=0.5, w=0.5, h=0.5)
    assert second.roi.pixels(1280, 720) == (320, 360, 960, 720)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["edge", "run", "--no-display"], "give --source SRC"),
        (["edge", "run", "--source", "a.avi", "--config", "e.toml"], "give --source SRC"),
        (["edge", "run", "--config", "e.toml", "--camera", "a"], "--camera goes with --source"),
    ],
)
def test_edge_run_wants_one_source_or_a_config(home: Path, argv: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, [*argv, "--dir", str(home)])
    assert result.exit_code == 78
    assert expected in result.output + result.stderr


# -- three cameras, one process ---------------------------------------------------------------


def _fit(photo: Any, width: int, height: int) -> Any:
    import cv2

    scale = min(width / photo.shape[1], height / photo.shape[0])
    return cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)))


def _canvas(width: int, height: int) -> Any:
    import numpy as np

    return np.full((height, width, 3), 60, dtype=np.uint8)


def _photo(row: dict[str, str]) -> Any:
    import cv2

    return cv2.imread(str(ENDTOEND / row["filename"]))


def drive_frames(row: dict[str, str]) -> list[Any]:
    """A car drifting a few pixels per frame (every frame differs: tracking merges them)."""
    photo = _fit(_photo(row), 900, 500)
    frames = []
    for step in range(HOLD):
        canvas = _canvas(960, 540)
        x, y = 10 + 3 * step, 10 + 2 * step
        canvas[y : y + photo.shape[0], x : x + photo.shape[1]] = photo[: 540 - y, : 960 - x]
        frames.append(canvas)
    return frames


def gate_frame(row: dict[str, str] | None, distractor: dict[str, str]) -> Any:
    """A standing car in the right half (the region of interest); another car, parked in the
    left half for the whole video, is outside it and must never be read."""
    canvas = _canvas(1280, 540)
    parked = _fit(_photo(distractor), 620, 520)
    canvas[10 : 10 + parked.shape[0], 10 : 10 + parked.shape[1]] = parked
    if row is not None:
        car = _fit(_photo(row), 620, 520)
        canvas[10 : 10 + car.shape[0], 650 : 650 + car.shape[1]] = car
    return canvas


def write_video(path: Path, frames: list[Any]) -> None:
    import cv2

    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def _canonical(plate: str) -> str:
    from privplate.tokens import canonical_plate

    return canonical_plate(plate)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The three sources, built from photos that the models read right in the very frames
    the cameras will see (a check of the edge's plumbing, not of OCR accuracy)."""
    from privplate.settings import load_settings
    from privplate.vision.factory import build_reader

    reader = build_reader(load_settings(Path("/nonexistent-privplate-home"), models_dir=MODELS_DIR))

    def reads_right(image: Any, row: dict[str, str]) -> bool:
        found = reader.read([image])[0]
        return len(found) == 1 and _canonical(found[0].best.text) == _canonical(row["plate"])

    rows = iter(labelled_rows("eu"))
    distractor = next(r for r in rows if reads_right(_photo(r), r))
    picked: dict[str, list[dict[str, str]]] = {"cam-drive": [], "cam-gate": [], "cam-photos": []}
    for row in rows:
        need = next((k for k, v in picked.items() if len(v) < 3), None)
        if need is None:
            break
        if need == "cam-drive":
            image = drive_frames(row)[0]
        elif need == "cam-gate":
            image = gate_frame(row, distractor)[:, 640:]  # what the detector is given
        else:
            image = _photo(row)
        if reads_right(image, row):
            picked[need].append(row)
    assert all(len(v) == 3 for v in picked.values())

    root = tmp_path_factory.mktemp("multicam")
    blank_drive = _canvas(960, 540)
    drive = [f for row in picked["cam-drive"] for f in [*drive_frames(row), *[blank_drive] * GAP]]
    write_video(root / "drive.avi", drive)
    gate = [
        f
        for row in picked["cam-gate"]
        for f in [gate_frame(row, distractor)] * HOLD + [gate_frame(None, distractor)] * GAP
    ]
    write_video(root / "gate.avi", gate)
    photos = root / "photos"
    photos.mkdir()
    for row in picked["cam-photos"]:
        (photos / Path(row["filename"]).name).symlink_to(ENDTOEND / row["filename"])
    (root / "edge.toml").write_text(
        "# three cameras, one process\n"
        '[[sources]]\ncamera = "cam-drive"\nsource = "drive.avi"\n\n'
        '[[sources]]\ncamera = "cam-gate"\nsource = "gate.avi"\nmax_fps = 3\n'
        "motion_threshold = 0.002\n"
        f"roi = {{ x = {ROI['x']}, y = {ROI['y']}, w = {ROI['w']}, h = {ROI['h']} }}\n\n"
        # Paced slowly so the kill below lands while the edge is still at work.
        '[[sources]]\ncamera = "cam-photos"\nsource = "photos"\nmax_fps = 0.4\nmotion = false\n',
        encoding="utf-8",
    )
    return {"root": root, "picked": picked, "distractor": distractor}


def _stored(dep: Deployment) -> dict[str, int]:
    from sqlalchemy import distinct, func, select

    from privplate.store.models import Read

    with dep.db.read() as conn:
        rows = conn.execute(
            select(Read.camera_id, func.count(distinct(Read.read_id))).group_by(Read.camera_id)
        ).all()
    return {str(camera): int(count) for camera, count in rows}


def _edge(home: Path, root: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PRIVPLATE_MODELS_DIR": str(MODELS_DIR), **ENV_TRACK}
    argv = [sys.executable, "-m", "privplate.cli.main", "edge", "run", "--no-display"]
    return subprocess.Popen(
        [*argv, "--config", str(root / "edge.toml"), "--dir", str(home), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


@needs_models
def test_three_cameras_in_one_process_survive_a_kill_and_read_each_car_once(
    home: Path, scene: dict[str, Any]
) -> None:
    root, picked = scene["root"], scene["picked"]
    with Deployment.open(home) as dep:
        for camera in picked:
            dep.add_camera(camera)
    since = datetime.now(UTC) - timedelta(hours=1)

    first = _edge(home, root)
    deadline = time.monotonic() + 240
    stored: dict[str, int] = {}
    while time.monotonic() < deadline and first.poll() is None:
        with Deployment.open(home) as dep:
            stored = _stored(dep)
        if sum(stored.values()) >= 2:
            break
        time.sleep(0.2)
    killed_mid_run = first.poll() is None
    first.send_signal(signal.SIGKILL)
    first_out, first_err = first.communicate(timeout=60)

    second = _edge(home, root)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode(errors="replace")[-3000:]
    summary = err.decode()
    assert "0 reads waiting in the spool (single-box)" in summary
    for camera in picked:
        assert f"camera {camera}: " in summary

    with Deployment.open(home) as dep:
        stored = _stored(dep)
        # Exactly one read per car, each on its own camera: nothing lost, nothing doubled.
        assert stored == {camera: 3 for camera in picked}, (stored, killed_mid_run)
        for camera, rows in picked.items():
            for row in rows:
                found = factories.lookup(dep, row["plate"], since)
                assert [m.camera_id for m in found] == [camera], (camera, len(found))
        # The car parked outside the gate's region of interest was never looked at.
        assert factories.lookup(dep, scene["distractor"]["plate"], since) == []

    # A third run finds every source read to its end: nothing is read again.
    third = _edge(home, root)
    _, third_err = third.communicate(timeout=300)
    assert third.returncode == 0
    assert third_err.decode().count("was read to its end by an earlier run") == 3
    with Deployment.open(home) as dep:
        assert _stored(dep) == {camera: 3 for camera in picked}

    plates = [r["plate"] for rows in picked.values() for r in rows]
    plates.append(scene["distractor"]["plate"])
    said = first_out + first_err + out + err
    assert hits_in_bytes(said, plates) == []
    assert hits_in_files([p for p in home.rglob("*") if p.is_file()], plates) == {}


@needs_models
def test_snapshot_gives_per_camera_figures_and_spool_age_never_a_plate(
    home: Path, scene: dict[str, Any]
) -> None:
    from contextlib import ExitStack

    from rich.console import Console

    from privplate.edge.config import EdgeConfig, Roi, SourceConfig
    from privplate.edge.display import render
    from privplate.edge.runtime import build_edge
    from privplate.edge.snapshot import EdgeSnapshot
    from privplate.settings import load_settings
    from privplate.vision.factory import build_reader

    root, picked = scene["root"], scene["picked"]
    with Deployment.open(home) as dep:
        for camera in ("cam-gate", "cam-photos"):
            dep.add_camera(camera)
    config = EdgeConfig(
        sources=[
            SourceConfig(
                camera="cam-gate", source=str(root / "gate.avi"), max_fps=3, roi=Roi(**ROI)
            ),
            SourceConfig(camera="cam-photos", source=str(root / "photos"), motion=False),
        ]
    )
    settings = load_settings(home, models_dir=MODELS_DIR, edge={"track_seconds": 0.5})
    with ExitStack() as stack:
        edge = build_edge(settings, build_reader(settings), stack, config, out=io.StringIO())
        edge.run()  # the uplink worker is not started: the reads wait in the spool
        shot = edge.snapshot()
        console = Console(record=True, width=140)
        console.print(render(edge))
        shown = console.export_text()
    assert isinstance(shot, EdgeSnapshot)
    gate, photos = shot.cameras
    assert (gate.camera_id, photos.camera_id) == ("cam-gate", "cam-photos")
    assert gate.frames == len(picked["cam-gate"]) * (HOLD + GAP) // 2  # capped to 3 of 6 fps
    assert gate.frames_skipped_motion > 0 and photos.frames_skipped_motion == 0
    assert (gate.reads, photos.reads) == (3, 3)
    assert gate.last_read_at is not None and gate.last_frame_at is not None
    assert gate.dropped_reads == photos.dropped_reads == 0
    assert shot.spool_depth == 6
    assert shot.spool_oldest_age_seconds is not None and shot.spool_oldest_age_seconds >= 0
    assert shot.as_dict()["cameras"][0]["camera_id"] == "cam-gate"
    for label in ("cam-gate", "cam-photos", "skipped (motion)", "last read", "spool depth"):
        assert label in shown
    plates = [r["plate"] for rows in picked.values() for r in rows]
    assert hits_in_bytes((repr(shot) + str(shot.as_dict()) + shown).encode(), plates) == []


@needs_models
def test_reads_made_again_after_a_restart_are_recognised_not_stored_twice(
    home: Path, scene: dict[str, Any]
) -> None:
    """A folder's frame times are the wall clock, so a car read again after a restart would
    be a new row in the store; the spool's ledger of issued read ids is what prevents it."""
    import threading
    from collections.abc import Iterator
    from contextlib import ExitStack

    from privplate.edge.config import EdgeConfig
    from privplate.edge.runtime import build_edge
    from privplate.edge.sources import Frame, ImageSource
    from privplate.settings import load_settings
    from privplate.vision.factory import build_reader

    class StopsAfter(ImageSource):
        """The folder, and the run asked to stop when its third photo comes up."""

        def __init__(self, path: Path, stop: threading.Event) -> None:
            super().__init__(path)
            self.stop = stop

        def frames(self, start: str | None = None) -> Iterator[Frame]:
            for n, frame in enumerate(super().frames(start)):
                if n == 2:
                    self.stop.set()
                yield frame

    photos = scene["root"] / "photos"
    rows = scene["picked"]["cam-photos"]
    with Deployment.open(home) as dep:
        dep.add_camera("cam-photos")
    config = EdgeConfig.single(str(photos), "cam-photos")
    # Cars stay open for the whole run: no resume point is written before the end.
    settings = load_settings(home, models_dir=MODELS_DIR, edge={"track_seconds": 600.0})
    reader = build_reader(settings)
    runs = []
    for attempt in range(2):
        stop = threading.Event()
        sources = [StopsAfter(photos, stop) if attempt == 0 else ImageSource(photos)]
        with ExitStack() as stack:
            edge = build_edge(settings, reader, stack, config, out=io.StringIO(), sources=sources)
            edge.worker.start()
            edge.run(stop)
            edge.worker.stop(drain_seconds=30.0)
            assert edge.spool.depth() == 0  # every read reached the store
            runs.append(edge.pipeline.stats)
    first, second = runs
    # Stopped after two photos, their cars closed into reads; the restart read all three
    # again (no resume point), recognised those two and made one new read.
    assert (first.frames, first.reads) == (2, 2)
    assert (second.frames, second.reads, second.replayed) == (3, 1, 2)
    with Deployment.open(home) as dep:
        assert _stored(dep) == {"cam-photos": 3}
        since = datetime.now(UTC) - timedelta(hours=1)
        assert [len(factories.lookup(dep, r["plate"], since)) for r in rows] == [1, 1, 1]


def test_an_enrolled_edge_takes_its_camera_from_the_enrolment(tmp_path: Path) -> None:
    import json

    from privplate.edge.config import EdgeConfig
    from privplate.edge.runtime import enrolled_cameras
    from privplate.settings import load_settings

    box = tmp_path / "box"
    box.mkdir()
    server = "https://lpr.example.org"
    (box / "enrolment.json").write_text(
        json.dumps(
            {
                "format": "privplate-edge-enrolment",
                "version": 1,
                "device_id": "edge-1",
                "name": "",
                "cameras": ["gate-1"],
                "server_url": server,
                "server_key": "privplate/test+00000000+AA==",
                "enrolled_at": datetime.now(UTC).isoformat(),
                "settings": {"edge": {"server_url": server}},
            }
        ),
        encoding="utf-8",
    )
    settings = load_settings(box)
    assert settings.edge.server_url == server
    assert enrolled_cameras(settings, EdgeConfig.single("rtsp://cam/s", None)) == ["gate-1"]
    with pytest.raises(ConfigError, match="not one this device was enrolled for"):
        enrolled_cameras(settings, EdgeConfig.single("rtsp://cam/s", "gate-9"))
    # Pointed at another server, the enrolment's cameras do not apply.
    other = load_settings(box, edge={"server_url": "https://other.example"})
    with pytest.raises(ConfigError, match="give --camera ID"):
        enrolled_cameras(other, EdgeConfig.single("rtsp://cam/s", None))
    assert enrolled_cameras(other, EdgeConfig.single("rtsp://cam/s", "gate-9")) == ["gate-9"]
