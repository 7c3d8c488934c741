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

from privplate.edge.fusion import Look, SlotFusion, Stacking, fuse, reading_length  # noqa: E402
from privplate.edge.tracking import Tracker  # noqa: E402
from privplate.vision.types import (  # noqa: E402
    Box,
    Candidate,
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
        fused = SlotFusion(reader.decode, pooling=pooling, gate=0.0)
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
    fusion = SlotFusion(reader.decode, gate=0.0)
    looks = [Look.of(right), Look.of(shifted), Look.of(shifted), Look.of(other)]
    out = fusion.read(looks, right)
    assert len(text(out)) == 7 and text(out) != text(shifted)


def test_tracker_fuses_a_closing_track_and_keeps_the_best_frame(reader: Any) -> None:
    frames = [
        table("KX42ZOB", {1: ("K", 0.6)}),
        table("KX42ZOB", {4: ("2", 0.6)}),
        table("KX42ZOB", {6: ("8", 0.6)}),
    ]
    for fusion in (SlotFusion(reader.decode, gate=0.0), None):
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

    tracker = Tracker(window=2.0, fusion=SlotFusion(reader.decode, gate=0.0))
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


# -- stacking: the looks' crops aligned and averaged, read once -------------------------------


def degraded_looks(reader: Any, rows: list[dict[str, str]], frames: int, seed: int) -> Any:
    """Per photo (at 0.8 of a 1280 x 720 frame): ``frames`` independently blurred, noisy,
    JPEG-ed frames, through a stacking tracker; yields (label, the photo's main track)."""
    from privplate.edge.labels import compare_form
    from tests.degraded_video import Degradation, degrade
    from tests.edge_helpers import ENDTOEND

    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(seed)
    for row in rows:
        photo = cv2.imread(str(ENDTOEND / row["filename"]))
        fit = 0.8 * min(1280 / photo.shape[1], 720 / photo.shape[0])
        photo = cv2.resize(photo, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA)
        tracker = Tracker(window=3.0, fusion=Stacking(reader))
        for k in range(frames):
            frame = degrade(photo, rng, Degradation())
            tracker.update(T0 + timedelta(seconds=0.1 * k), reader.read([frame])[0], frame)
        tracks = tracker.flush()
        if tracks:
            yield compare_form(row["plate"]), max(tracks, key=lambda t: t.sightings)


def test_a_stacked_track_reads_at_least_as_many_plates_as_its_best_frames(reader: Any) -> None:
    """Twelve shared photos, eight degraded looks each (the same degradation as
    benchmarks/fusion.py's video): the stack's reading replaces the best frame's only when
    surer, and the plates read exactly do not go down (benchmarks/fusion.py measures how much
    they go up, on 330 cars)."""
    from privplate.edge.labels import compare_form
    from privplate.vision.stacking import STACK_SIZE
    from tests.edge_helpers import labelled_rows

    best = stacked = replaced = 0
    for label, track in degraded_looks(reader, labelled_rows(limit=12), frames=8, seed=16):
        assert len(track.looks) == track.sightings
        assert all(
            len(look.images) == len(reader.options.variants)
            and all(i.shape == (STACK_SIZE[1], STACK_SIZE[0], 3) for i in look.images)
            for look in track.looks
        )
        final = track.final
        assert final.detection is track.best.detection  # the evidence stays the best frame
        assert final.ocr_confidence >= track.best.ocr_confidence
        replaced += final is not track.best
        best += compare_form(track.best.best.text) == label
        stacked += compare_form(final.best.text) == label
    assert replaced > 0
    assert stacked >= best


def test_stacking_keeps_the_best_frame_when_there_is_nothing_to_stack(reader: Any) -> None:
    stacking = Stacking(reader)
    plate = frame_reading(reader, table("KX42ZOB"), score=0.9)
    frame = np.full((480, 640, 3), 128, dtype=np.uint8)  # flat: no look registers onto another
    alone = stacking.look(plate, frame)
    assert stacking.read([alone], plate) is plate
    other = stacking.look(frame_reading(reader, table("KX42Z0B"), score=0.8), frame)
    assert stacking.read([alone, other], plate) is plate
    assert stacking.read([Look.of(plate), Look.of(plate)], plate) is plate  # no crops kept


def at_x(text_: str, x: float) -> PlateReading:
    """A sure reading of ``text_`` in the 80 x 30 box at (x, 100)."""
    reading = PlateReading(
        Detection(Box(x, 100, x + 80, 130), 0.9), Candidate(text_, 0.9), (), 0.9, table(text_)
    )
    return reading


def plate_frame(x: float, seed: int) -> Any:
    """A frame with a plate-like pattern (light ground, dark blocks; ``seed`` picks which) in
    the box ``at_x(text, x)`` reports."""
    rng = np.random.default_rng(seed)
    plate = np.full((30, 80, 3), 210, dtype=np.uint8)
    for _ in range(9):
        px, py = int(rng.integers(2, 70)), int(rng.integers(2, 22))
        plate[py : py + 7, px : px + 5] = 30
    frame = np.full((480, 640, 3), 90, dtype=np.uint8)
    frame[100:130, round(x) : round(x) + 80] = plate
    return frame


def test_a_frame_misread_beyond_resemblance_stays_with_its_car_if_it_looks_the_same(
    reader: Any,
) -> None:
    """With stacking, a box overlapping the one of a moment ago is the same plate whatever it
    reads, when its crop looks like the last one; another plate there is another car."""
    from privplate.edge.tracking import CONTINUITY_SECONDS

    def run(tracker: Tracker, sightings: list[tuple[float, str, int, int]]) -> int:
        """Tracks made of (seconds, text, x, pattern) sightings."""
        for seconds, text_, x, seed in sightings:
            frame = plate_frame(x, seed)
            tracker.update(T0 + timedelta(seconds=seconds), [at_x(text_, x)], frame)
        return len(tracker.flush())

    def stacking() -> Tracker:
        return Tracker(window=5.0, fusion=Stacking(reader))

    garbled = [(0.0, "ABC123", 10, 1), (0.1, "XY8723", 16, 1), (0.3, "ABC123", 30, 1)]
    assert run(stacking(), garbled) == 1  # the last one a frame missed later
    assert run(stacking(), [(0.0, "ABC123", 10, 1), (0.1, "XY8723", 16, 2)]) == 2
    later = CONTINUITY_SECONDS + 0.05  # not a moment later: the texts must be alike
    assert run(stacking(), [(0.0, "ABC123", 10, 1), (later, "XY8723", 16, 1)]) == 2
    # No fusion, no looks to compare: the texts decide.
    assert run(Tracker(window=5.0), [(0.0, "ABC123", 10, 1), (0.1, "XY8723", 16, 1)]) == 2


def test_a_long_track_keeps_its_best_frames_look_among_the_heaviest() -> None:
    """A car in view for long keeps MAX_LOOKS looks, the heaviest; the best frame's look (the
    stack's reference) stays even when it is light (a sure reading of a small plate)."""
    from privplate.edge.fusion import MAX_LOOKS

    def sighting(height: float, confidence: float) -> PlateReading:
        box = Box(100, 100, 100 + 3 * height, 100 + height)
        return PlateReading(
            Detection(box, 1.0), Candidate("KX42ZOB", 0.9), (), confidence, table("KX42ZOB")
        )

    tracker = Tracker(window=60.0)
    small_and_sure = sighting(8, 0.99)  # weight 0.99 x 8/32: the lightest of all
    tracker.update(T0, [small_and_sure], FRAME)
    for k in range(1, 3 * MAX_LOOKS):
        tracker.update(T0 + timedelta(seconds=0.1 * k), [sighting(40, 0.6)], FRAME)
    (track,) = tracker.flush()
    assert track.best is small_and_sure and track.sightings == 3 * MAX_LOOKS
    assert len(track.looks) == MAX_LOOKS
    assert any(look.slots is small_and_sure.slots for look in track.looks)
