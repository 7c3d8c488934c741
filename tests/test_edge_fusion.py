"""Track fusion (privplate.edge.fusion): per-slot probabilities of a track's frames pooled by
look quality and decoded with the real reader. Accuracy on a degraded video is measured by
benchmarks/fusion.py (fused and best-frame reads of the same tracks, one run).

Labels stay in memory; nothing here writes or prints a plate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.edge_helpers import MODELS_DIR, needs_models

pytestmark = needs_models
np = pytest.importorskip("numpy")

from privplate.edge.fusion import Fusion, Look, fuse, reading_length  # noqa: E402
from privplate.edge.tracking import Tracker  # noqa: E402
from privplate.vision.types import (  # noqa: E402
    Box,
    Detection,
    PlateReading,
    SlotProbabilities,
)

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
SLOTS = 9
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FRAME = np.zeros((10, 10, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def reader() -> Any:
    from privplate.settings import load_settings
    from privplate.vision.factory import build_reader

    return build_reader(load_settings(Path("/nonexistent-privplate-home"), models_dir=MODELS_DIR))


def table(text: str, unsure: dict[int, tuple[str, float]] | None = None) -> SlotProbabilities:
    """A 9 x 37 table reading ``text`` (0.9 per slot, padded), where ``unsure[slot] = (other,
    p)`` gives that slot to ``other`` with probability p and the true character 0.9 - p."""
    probs = np.full((SLOTS, len(ALPHABET)), 0.1 / (len(ALPHABET) - 1), dtype=np.float32)
    for slot, char in enumerate(text.ljust(SLOTS, "_")):
        probs[slot, ALPHABET.index(char)] = 0.9
        if unsure and slot in unsure:
            other, p = unsure[slot]
            probs[slot, ALPHABET.index(other)] = p
            probs[slot, ALPHABET.index(char)] = 0.9 - p
    return SlotProbabilities(probs, ALPHABET, "_")


def frame_reading(reader: Any, slots: SlotProbabilities, score: float = 0.9) -> PlateReading:
    reading = reader.decode(Detection(Box(100, 100, 220, 140), score), slots)
    assert reading is not None
    return reading  # type: ignore[no-any-return]


def text(reading: PlateReading) -> str:
    return reading.best.text


def test_two_frames_misreading_different_slots_fuse_to_the_plate(reader: Any) -> None:
    first = frame_reading(reader, table("KX42ZOB", {1: ("K", 0.6)}))
    second = frame_reading(reader, table("KX42ZOB", {4: ("2", 0.6)}))
    assert text(first) != "KX42ZOB" and text(second) != "KX42ZOB"  # each frame alone is wrong
    for pooling in ("mean", "log"):
        fused = Fusion(reader.decode, pooling=pooling, gate=0.0)
        best = max(first, second, key=lambda r: r.confidence)
        out = fused.read([Look.of(first), Look.of(second)], best)
        assert text(out) == "KX42ZOB"
        assert out.detection == best.detection  # the box (evidence) stays the best frame's


def test_weights_decide_a_disputed_slot(reader: Any) -> None:
    eight = table("AB8123")
    bee = table("ABB123")
    heavy, light = 1.0, 0.2
    looks = [Look(eight, heavy, 6), Look(bee, light, 6)]
    assert text(frame_reading(reader, fuse(looks))) == "AB8123"
    looks = [Look(eight, light, 6), Look(bee, heavy, 6)]
    assert text(frame_reading(reader, fuse(looks))) == "ABB123"


def test_a_look_of_another_length_is_left_out(reader: Any) -> None:
    """A frame that dropped a character has every later slot shifted: averaged in, it would
    turn the right reading into a wrong one; fusion leaves it out."""
    right = frame_reading(reader, table("7ABC123", {6: ("8", 0.5)}), score=0.9)
    other = frame_reading(reader, table("7AB1234", {6: ("3", 0.3)}), score=0.9)
    shifted = frame_reading(reader, table("7AC123"), score=0.9)  # "B" lost: slots 2.. shifted
    assert reading_length(shifted.slots) == 6 and reading_length(right.slots) == 7
    naive = fuse([Look.of(right), Look.of(shifted), Look.of(shifted)], pooling="mean")
    assert text(frame_reading(reader, naive)) != text(right)  # what alignment prevents
    fusion = Fusion(reader.decode, gate=0.0)
    looks = [Look.of(right), Look.of(shifted), Look.of(shifted), Look.of(other)]
    out = fusion.read(looks, right)
    assert len(text(out)) == 7 and text(out) != text(shifted)


def test_tracker_fuses_a_closing_track_and_keeps_the_best_frame(reader: Any) -> None:
    frames = [
        table("KX42ZOB", {1: ("K", 0.6)}),
        table("KX42ZOB", {4: ("2", 0.6)}),
        table("KX42ZOB", {6: ("8", 0.6)}),
    ]
    for fusion in (Fusion(reader.decode, gate=0.0), None):
        tracker = Tracker(window=2.0, fusion=fusion)
        readings = [frame_reading(reader, f, score=0.8 + 0.05 * i) for i, f in enumerate(frames)]
        for i, reading in enumerate(readings):
            tracker.update(T0 + timedelta(seconds=0.1 * i), [reading], FRAME)
        (track,) = tracker.flush()
        assert track.best is readings[-1]  # the evidence frame: most confident
        assert text(track.best) != "KX42ZOB"
        assert (text(track.final) == "KX42ZOB") == (fusion is not None)


def test_an_alerted_track_keeps_the_alerting_reading_in_its_read(reader: Any, dep: Any) -> None:
    """The edge alert named the read id; the read (fused text first) still carries the
    tokens of the reading that alerted, so the server's match agrees with the alert."""
    from privplate.edge.reads import reading_tokens
    from privplate.tokens import canonical_plate, plate_token

    tracker = Tracker(window=2.0, fusion=Fusion(reader.decode, gate=0.0))
    first = frame_reading(reader, table("KX42ZOB", {1: ("K", 0.6)}), score=0.9)
    (track,) = tracker.update(T0, [first], FRAME)[1]
    track.alerted, track.alerted_on = True, track.final
    tracker.update(T0 + timedelta(seconds=0.1), [frame_reading(reader, table("KX42ZOB"))], FRAME)
    (closed,) = tracker.flush()
    assert closed.read_id == track.read_id
    epoch, tokens = reading_tokens(closed, dep.keyring, None)
    key = epoch.key
    assert tokens[0].token == plate_token(key, canonical_plate("KX42ZOB"))
    assert plate_token(key, canonical_plate(text(first))) in {t.token for t in tokens}
