"""The edge pipeline end to end with the real models: one read per car from a video, alerts,
single-box ingest into the deployment's store, and the camera check of `edge run`."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privplate.cli.main import app
from privplate.deployment import Deployment
from tests import factories
from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, needs_models

pytestmark = needs_models
CARS = 6
FRAMES_PER_CAR = 24
FPS = 8.0


def make_video(path: Path, rows: list[dict[str, str]]) -> None:
    """Each photo held for FRAMES_PER_CAR frames, drifting a few pixels per frame like a
    slowly moving car (so every frame differs and tracking, not motion gating, merges them)."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (1280, 720))
    assert writer.isOpened()
    for row in rows:
        photo = cv2.imread(str(ENDTOEND / row["filename"]))
        scale = min(1200 / photo.shape[1], 680 / photo.shape[0])
        photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)))
        for step in range(FRAMES_PER_CAR):
            canvas = np.full((720, 1280, 3), 60, dtype=np.uint8)
            x, y = 10 + step * 2, 10 + step
            canvas[y : y + photo.shape[0], x : x + photo.shape[1]] = photo[: 720 - y, : 1280 - x]
            writer.write(canvas)
    writer.release()


@pytest.fixture(scope="module")
def reader():  # type: ignore[no-untyped-def]
    from privplate.settings import load_settings
    from privplate.vision.factory import build_reader

    return build_reader(load_settings(Path("/nonexistent-privplate-home"), models_dir=MODELS_DIR))


class ListSink:
    def __init__(self) -> None:
        self.items: list[object] = []

    def put(self, item: object) -> None:
        self.items.append(item)


class LabelFeed:
    """A hotlist holding the tokens of the given plates under the deployment's keys."""

    def __init__(self, dep: Deployment, plates: list[str]) -> None:
        self.dep, self.plates = dep, plates

    def epoch_tokens(self, epoch_id: int) -> list[tuple[bytes, str]]:
        from privplate.tokens import canonical_plate, plate_token

        key = self.dep.keyring.key_for(epoch_id).key
        return [(plate_token(key, canonical_plate(p)), "stolen") for p in self.plates]


@pytest.mark.parametrize("overlap", [True, False], ids=["stages-overlapped", "one-thread"])
def test_video_gives_one_read_per_car_and_alerts(
    overlap: bool, tmp_path: Path, dep: Deployment, reader
) -> None:  # type: ignore[no-untyped-def]
    from privplate.edge.alerts import EdgeAlerts
    from privplate.edge.pipeline import EdgePipeline
    from privplate.edge.sources import MotionGate, VideoSource
    from privplate.edge.tracking import Tracker

    rows = labelled_rows("eu", CARS)
    video = tmp_path / "cars.avi"
    make_video(video, rows)
    dep.add_camera("gate-1")
    out = io.StringIO()
    sink = ListSink()
    started = datetime.now(UTC) - timedelta(minutes=1)
    pipeline = EdgePipeline(
        reader,
        sink,
        camera_id="gate-1",
        keys=dep.keyring,
        alerts=EdgeAlerts(LabelFeed(dep, [rows[1]["plate"], rows[4]["plate"]]), out=out),
        tracker=Tracker(window=1.0),
        motion=MotionGate(0.002),
    )
    stats = pipeline.run(VideoSource(video, started_at=started), overlap=overlap)
    assert stats.frames == CARS * FRAMES_PER_CAR
    assert stats.plates > 2 * CARS  # the plates were seen in many frames ...
    assert len(sink.items) == CARS  # ... and became one read per car
    alerts = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(alerts) == 2
    read_ids = {str(i.read.read_id) for i in sink.items}  # type: ignore[attr-defined]
    assert {a["read_id"] for a in alerts} <= read_ids
    assert all(a["hotlists"] == ["stolen"] and "plate" not in a for a in alerts)

    # Single-box: the same reads in the deployment's store, found by plate exactly once each.
    import uuid

    from privplate.devices.batches import IngestBatch

    reads = [i.read for i in sink.items]  # type: ignore[attr-defined]
    batch = IngestBatch.from_store(uuid.uuid4(), reads, [])
    assert factories.ingest(dep, *batch.to_store()).inserted == CARS
    found = [len(factories.lookup(dep, r["plate"], started)) for r in rows]
    assert sum(found) >= CARS - 1 and max(found) == 1


def test_edge_run_refuses_an_unregistered_camera(home: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "edge",
            "run",
            "--source",
            str(ENDTOEND / "eu"),
            "--camera",
            "nowhere",
            "--dir",
            str(home),
            "--no-display",
        ],
        env={"PRIVPLATE_MODELS_DIR": str(MODELS_DIR)},
    )
    assert result.exit_code == 78
    assert "privplate cameras add nowhere" in result.output + result.stderr


def test_edge_run_single_box_stores_one_read_per_photo(home: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = labelled_rows("us", 4)
    for row in rows:
        (photos / Path(row["filename"]).name).symlink_to(ENDTOEND / row["filename"])
    with Deployment.open(home) as dep:
        dep.add_camera("gate-2")
    result = CliRunner().invoke(
        app,
        ["edge", "run", "--source", str(photos), "--dir", str(home), "--no-display"],
        env={"PRIVPLATE_MODELS_DIR": str(MODELS_DIR)},
    )
    assert result.exit_code == 0, result.output
    assert "0 reads waiting in the spool" in result.output + result.stderr
    with Deployment.open(home) as dep:
        since = datetime.now(UTC) - timedelta(minutes=5)
        found = [len(factories.lookup(dep, r["plate"], since)) for r in rows]
    assert sum(found) >= 3 and max(found) == 1


def test_live_display_shows_figures_not_plates(home: Path, tmp_path: Path, reader) -> None:  # type: ignore[no-untyped-def]
    from contextlib import ExitStack

    from rich.console import Console

    from privplate.edge.config import EdgeConfig
    from privplate.edge.display import render
    from privplate.edge.runtime import build_edge
    from privplate.settings import load_settings

    rows = labelled_rows("eu", 3)
    photos = tmp_path / "photos"
    photos.mkdir()
    for row in rows:
        (photos / Path(row["filename"]).name).symlink_to(ENDTOEND / row["filename"])
    with Deployment.open(home) as dep:
        dep.add_camera("gate-1")
    settings = load_settings(home, models_dir=MODELS_DIR)
    with ExitStack() as stack:
        config = EdgeConfig.single(str(photos), None)
        edge = build_edge(settings, reader, stack, config, out=io.StringIO())
        edge.run()
        console = Console(record=True, width=120)
        console.print(render(edge))
        shown = console.export_text()
    for label in ("frames/s", "skipped (motion)", "last read", "plates/s", "alerts"):
        assert label in shown
    for label in ("spool depth", "single-box", "gate-1"):
        assert label in shown
    from tests.privacy import hits_in_bytes

    assert hits_in_bytes(shown.encode(), [r["plate"] for r in rows]) == []


def test_a_failure_after_detection_stops_the_run_with_its_error(dep: Deployment, reader) -> None:  # type: ignore[no-untyped-def]
    """The OCR stage runs in its own thread; its failure must reach the caller, not vanish."""
    from privplate.edge.pipeline import EdgePipeline
    from privplate.edge.sources import ImageSource
    from privplate.vision.reader import PlateReader

    class BrokenOcr:
        """Fails the way a corrupted onnxruntime session would (failure injection)."""

        def recognize(self, crops: list[object]) -> list[object]:
            raise RuntimeError(f"onnxruntime failed on {len(crops)} crops")

    dep.add_camera("gate-1")
    broken = PlateReader(reader.detector, BrokenOcr(), reader.options)
    pipeline = EdgePipeline(broken, ListSink(), camera_id="gate-1", keys=dep.keyring)
    with pytest.raises(RuntimeError, match="onnxruntime failed"):
        pipeline.run(ImageSource(ENDTOEND / "eu"))
    assert pipeline.stats.frames < 108  # it stopped instead of going on without reading
