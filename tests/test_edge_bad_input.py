"""Bad input never stops the edge: corrupt and empty images, unreadable videos, streams that
fail or stall. Each gives a clear logged reason (never a plate) and the pipeline goes on."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, needs_edge, needs_models
from tests.privacy import hits_in_bytes

pytestmark = needs_edge


class ListSink:
    def __init__(self) -> None:
        self.items: list[object] = []

    def put(self, item: object) -> None:
        self.items.append(item)


@pytest.fixture(scope="module")
def reader():  # type: ignore[no-untyped-def]
    if (MODELS_DIR / "yolov8n-plate-640.onnx").is_file() is False:
        pytest.skip("shared models absent; set PRIVPLATE_MODELS_DIR")
    from privplate.settings import load_settings
    from privplate.vision.factory import build_reader

    return build_reader(load_settings(Path("/nonexistent-privplate-home"), models_dir=MODELS_DIR))


def pipeline_for(reader, dep):  # type: ignore[no-untyped-def]
    from privplate.edge.pipeline import EdgePipeline

    dep.add_camera("gate-1")
    sink = ListSink()
    return EdgePipeline(reader, sink, camera_id="gate-1", keys=dep.keyring), sink


@needs_models
def test_corrupt_and_empty_images_are_skipped_with_a_reason(
    tmp_path: Path, dep, reader, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    from privplate.edge.sources import ImageSource

    rows = labelled_rows("eu", 2)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a-empty.jpg").write_bytes(b"")
    (folder / "b-corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20)
    (folder / "c-text.png").write_text("this is not an image")
    for i, row in enumerate(rows):
        (folder / f"d-good{i}.jpg").symlink_to(ENDTOEND / row["filename"])
    pipeline, sink = pipeline_for(reader, dep)
    with caplog.at_level(logging.WARNING):
        stats = pipeline.run(ImageSource(folder))
    assert stats.frames == 2 and len(sink.items) == 2  # the good photos still became reads
    messages = [r.getMessage() for r in caplog.records]
    assert any("a-empty.jpg: empty file" in m for m in messages)
    assert any("b-corrupt.jpg: not a decodable image" in m for m in messages)
    assert any("c-text.png: not a decodable image" in m for m in messages)
    assert hits_in_bytes(caplog.text.encode(), [r["plate"] for r in rows]) == []


@needs_models
def test_unreadable_videos_are_skipped_with_a_reason(
    tmp_path: Path, dep, reader, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    from privplate.edge.sources import VideoSource

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4000))
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    pipeline, sink = pipeline_for(reader, dep)
    with caplog.at_level(logging.WARNING):
        for video in (garbage, empty, tmp_path / "missing.mkv"):
            pipeline.run(VideoSource(video))
    assert pipeline.stats.frames == 0 and sink.items == []
    text = caplog.text
    assert "garbage.mp4: not a readable video" in text or "garbage.mp4: the video has no" in text
    assert "empty.avi: video file is missing or empty" in text
    assert "missing.mkv: video file is missing or empty" in text


def test_a_failing_stream_is_retried_with_growing_backoff(caplog: pytest.LogCaptureFixture) -> None:
    from privplate.edge.sources import StreamSource

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delays: list[float] = []
    source = StreamSource(
        f"rtsp://user:secret@127.0.0.1:{port}/cam",
        stall_seconds=1.0,
        max_reconnects=4,
        sleep=delays.append,
    )
    with caplog.at_level(logging.WARNING):
        frames = list(source.frames())
    assert frames == []
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert source.status == "gave up"
    assert "cannot open the stream" in caplog.text and "giving up after 4 reconnects" in caplog.text
    assert "secret" not in caplog.text  # stream credentials are never logged


@pytest.fixture
def stalling_camera() -> Iterator[str]:
    """An MJPEG camera over HTTP that sends five frames per connection, then goes silent."""
    import cv2
    import numpy as np

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()
    ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 128, dtype=np.uint8))
    assert ok
    part = (
        b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
        + jpeg.tobytes()
    )

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=f\r\n\r\n"
            )
            for _ in range(5):
                conn.sendall(part + b"\r\n")
                time.sleep(0.02)
            stop.wait(30)  # stall: connected, silent

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/video.mjpg"
    stop.set()
    server.close()


@needs_models
def test_a_stalling_stream_is_reconnected_and_the_pipeline_goes_on(
    stalling_camera: str, dep, reader, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    from privplate.edge.sources import StreamSource

    source = StreamSource(
        stalling_camera, stall_seconds=1.0, max_reconnects=1, sleep=lambda _: None
    )
    pipeline, sink = pipeline_for(reader, dep)
    with caplog.at_level(logging.WARNING):
        stats = pipeline.run(source)
    assert stats.frames == 10  # five before the stall, five after reconnecting
    assert source.reconnects == 1
    assert "stream stalled, reconnecting" in caplog.text
    assert sink.items == []  # a grey picture has no plate


def test_unknown_source_kind_is_refused_with_what_to_give(tmp_path: Path) -> None:
    from privplate.edge.sources import open_source
    from privplate.errors import SourceError

    with pytest.raises(SourceError, match="neither a camera URL"):
        open_source(str(tmp_path / "notes.txt"))
