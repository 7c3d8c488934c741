"""Detection thinned while every car in view is already read (no model needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.edge_helpers import needs_edge

np = pytest.importorskip("numpy")

from privplate.edge.sources import SettledGate  # noqa: E402
from privplate.edge.tracking import Tracker  # noqa: E402
from privplate.vision.types import (  # noqa: E402
    Box,
    Candidate,
    Detection,
    PlateReading,
    SlotProbabilities,
)

pytestmark = needs_edge
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FRAME = np.zeros((10, 10, 3), dtype=np.uint8)
NO_SLOTS = SlotProbabilities(np.zeros((1, 1), dtype=np.float32), "_", "_")


def reading(text: str, x: float, confidence: float) -> PlateReading:
    return PlateReading(
        Detection(Box(x, 100, x + 80, 130), 0.9), Candidate(text, 0.9), (), confidence, NO_SLOTS
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds / 10)


def moving_frames(count: int) -> list[np.ndarray]:
    """Frames that all differ (a car driving through), so the motion gate passes each."""
    frames = []
    for i in range(count):
        frame = np.zeros((54, 96, 3), dtype=np.uint8)
        frame[:, (i * 7) % 90 : (i * 7) % 90 + 6] = 255
        frames.append(frame)
    return frames


def test_a_tracker_is_settled_once_the_cars_in_view_read_alike_three_times() -> None:
    tracker = Tracker(window=2.0)
    assert not tracker.settled()  # nothing in view: look at everything
    for i in range(2):
        tracker.update(at(i), [reading("ABC123", 10 + 4 * i, 0.7)], FRAME)
        assert not tracker.settled()  # seen once, twice
    tracker.update(at(2), [reading("ABC123", 18, 0.7)], FRAME)
    assert tracker.settled()
    assert not tracker.settled(confidence=0.8)
    # A reading of another text starts the agreement again.
    tracker.update(at(3), [reading("ABC128", 22, 0.65)], FRAME)
    assert not tracker.settled()
    for i in range(4, 6):
        tracker.update(at(i), [reading("ABC123", 22 + i, 0.7)], FRAME)
    assert tracker.settled()
    # A second car, new in view, unsettles it.
    tracker.update(at(6), [reading("ABC123", 30, 0.7), reading("XYZ789", 400, 0.9)], FRAME)
    assert not tracker.settled()


def test_a_frame_without_plates_unsettles_the_view() -> None:
    tracker = Tracker(window=5.0)
    for i in range(3):
        tracker.update(at(i), [reading("ABC123", 10 + 4 * i, 0.7)], FRAME)
    assert tracker.settled()
    tracker.update(at(3), [], FRAME)  # the car was missed (or left): look again
    assert not tracker.settled() and len(tracker.open) == 1


@pytest.mark.parametrize("stride", [1, 2, 3, 5])
def test_while_settled_only_every_stride_th_moving_frame_is_looked_at(stride: int) -> None:
    gate = SettledGate(0.002, lambda: True, stride=stride)
    passed = [gate.moved(f) for f in moving_frames(15)]
    assert sum(passed) == 15 // stride
    assert passed[stride - 1] and passed[0] == (stride == 1)


def test_unsettled_every_moving_frame_is_looked_at_and_still_frames_are_not() -> None:
    settled = False
    gate = SettledGate(0.002, lambda: settled, stride=3)
    assert all(gate.moved(f) for f in moving_frames(6))
    still = moving_frames(1)[0]
    assert gate.moved(still) and not gate.moved(still.copy())  # the motion gate as before
    settled = True
    assert [gate.moved(f) for f in moving_frames(4)] == [False, False, True, False]


def test_with_the_motion_gate_off_the_stride_still_applies() -> None:
    gate = SettledGate(0.0, lambda: True, stride=2)
    still = np.zeros((54, 96, 3), dtype=np.uint8)
    assert [gate.moved(still) for _ in range(4)] == [False, True, False, True]
