"""Tracking, frame-rate cap and motion gate (no model needed)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.edge_helpers import needs_edge

np = pytest.importorskip("numpy")

from privplate.edge.fusion import Look  # noqa: E402
from privplate.edge.sources import Frame, MotionGate, cap_rate  # noqa: E402
from privplate.edge.tracking import Tracker, similarity  # noqa: E402
from privplate.vision.types import (  # noqa: E402
    Box,
    Candidate,
    Detection,
    PlateReading,
    SlotProbabilities,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FRAME = np.zeros((10, 10, 3), dtype=np.uint8)
NO_SLOTS = SlotProbabilities(np.zeros((1, 1), dtype=np.float32), "_", "_")


def reading(
    text: str, x: float, score: float = 0.9, alternates: tuple[str, ...] = ()
) -> PlateReading:
    return PlateReading(
        Detection(Box(x, 100, x + 80, 130), score),
        Candidate(text, 0.9),
        tuple(Candidate(a, 0.1) for a in alternates),
        0.9,
        NO_SLOTS,
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_similarity() -> None:
    assert similarity("ABC123", "ABC123") == 1.0
    assert similarity("ABC123", "ABC128") == pytest.approx(5 / 6)
    assert similarity("ABC123", "XYZ789") == 0.0


def test_similarity_is_the_edit_distance_over_the_longer_text() -> None:
    assert similarity("", "") == 1.0
    assert similarity("", "AB") == 0.0
    assert similarity("ABC", "ABCD") == pytest.approx(3 / 4)  # one insertion
    assert similarity("AB12", "BA12") == pytest.approx(1 / 2)  # a swap is two edits
    assert similarity("7ABC123", "ABC1234") == pytest.approx(1 - 2 / 7)


class FailingFusion:
    """Fuses by failing for the plate ``fails`` (as an OCR session error would)."""

    def __init__(self, fails: str) -> None:
        self.fails = fails

    def look(self, reading: PlateReading, frame: Any) -> Look:  # noqa: ARG002
        return Look.of(reading)

    def same_plate(self, earlier: Look, later: Look) -> bool:  # noqa: ARG002
        return False

    def read(self, looks: Any, best: PlateReading) -> PlateReading:  # noqa: ARG002
        if best.best.text == self.fails:
            raise RuntimeError(f"session failed on {best.best.text}")
        return reading(best.best.text + "F", best.detection.box.x1)


def test_a_track_whose_fusion_fails_keeps_its_best_frame_and_the_others_close_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two cars leave together; fusing the first one's frames fails. Both close: the first
    with its best frame's reading, the second fused; the log names the error's type, never
    its text (which here holds the plate)."""
    tracker = Tracker(window=1.0, fusion=FailingFusion("ABC123"))
    tracker.update(at(0), [reading("ABC123", 10), reading("XYZ789", 300)], FRAME)
    with caplog.at_level(logging.WARNING, logger="privplate.edge.tracking"):
        closed, _ = tracker.update(at(3.0), [], FRAME)
    assert sorted(t.final.best.text for t in closed) == ["ABC123", "XYZ789F"]
    assert tracker.open == []
    assert "RuntimeError" in caplog.text and "ABC123" not in caplog.text


def test_one_car_over_many_frames_is_one_track_with_its_best_frame() -> None:
    tracker = Tracker(window=2.0)
    texts = ["ABC123", "ABC128", "ABC123", "A8C123"]  # OCR wobbles between frames
    for i, text in enumerate(texts):
        closed, seen = tracker.update(
            at(i * 0.1), [reading(text, 10 + 5 * i, 0.5 + 0.1 * i)], FRAME
        )
        assert closed == [] and len(seen) == 1
    (track,) = tracker.flush()
    assert track.sightings == 4
    assert track.best.detection.score == pytest.approx(0.8)


def test_two_cars_in_one_frame_stay_two_tracks_and_expire() -> None:
    tracker = Tracker(window=1.0)
    tracker.update(at(0), [reading("ABC123", 10), reading("ABC124", 60)], FRAME)
    tracker.update(at(0.5), [reading("ABC123", 12), reading("ABC124", 62)], FRAME)
    closed, _ = tracker.update(at(3.0), [], FRAME)
    assert len(closed) == 2 and all(t.sightings == 2 for t in closed)


def test_a_different_plate_in_the_same_place_is_a_new_car() -> None:
    tracker = Tracker(window=5.0)
    tracker.update(at(0), [reading("ABC123", 10)], FRAME)
    tracker.update(at(1), [reading("XYZ789", 10)], FRAME)
    assert len(tracker.flush()) == 2


def test_a_plate_that_moved_far_is_matched_by_text() -> None:
    tracker = Tracker(window=5.0)
    tracker.update(at(0), [reading("ABC123", 10)], FRAME)
    tracker.update(at(0.5), [reading("ABC123", 400)], FRAME)
    assert len(tracker.flush()) == 1


def frames(clocks: list[float]) -> list[Frame]:
    return [Frame(FRAME, at(c), i, c) for i, c in enumerate(clocks)]


def test_rate_cap_keeps_one_frame_per_interval() -> None:
    source = frames([i / 30 for i in range(90)])  # 3 s at 30 fps
    kept = list(cap_rate(iter(source), 10.0))
    assert len(kept) == 30
    assert list(cap_rate(iter(source), 0.0)) == source


@needs_edge
def test_motion_gate_skips_still_frames_and_sensor_noise() -> None:
    rng = np.random.default_rng(1)
    scene = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    gate = MotionGate(0.002)
    assert gate.moved(scene)  # the first frame always goes to detection
    noisy = np.clip(scene + rng.normal(0, 2, scene.shape), 0, 255).astype(np.uint8)
    assert not gate.moved(noisy)
    car = scene.copy()
    car[100:250, 200:450] = 30  # something drove in
    assert gate.moved(car)
    assert not gate.moved(car)
