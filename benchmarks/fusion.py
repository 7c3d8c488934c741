"""Track fusion: cars read exactly from the best frame, from the frames' OCR probabilities
pooled, and from their plate crops stacked, all on the same tracks of one run.

Builds a degraded video of the shared photos (tests/degraded_video.py: each car approaching
over ``--hold`` frames through motion blur, sensor noise and JPEG re-compression, seeded) and
runs it through the edge pipeline as `privplate edge run` builds it (benchmarks/edge.py), with
the default tracker (edge.track_fusion = "stacked"). Every closed track keeps its best frame's
reading and every look's table too, so the three ways of making the read (privplate.edge.fusion)
are graded on the same tracks: a car is read exactly when its main track (most sightings) reads
its label (privplate.edge.labels.compare_form). The same comparison runs on the plain video of
benchmarks/edge.py's make_video (mild noise, moving cars), where fusion must not hurt.

Only counts are printed, never a plate; labels stay in memory.

    .venv/bin/python benchmarks/fusion.py --cars 60     # a few minutes
    .venv/bin/python benchmarks/fusion.py               # every photo (330 cars), ~15 minutes
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge import MODELS, PHOTOS, deployment, labelled, make_pipeline, make_video, settings_for

from privplate.edge.fusion import SlotFusion, track_fusion
from privplate.edge.labels import compare_form
from privplate.edge.sources import VideoSource
from privplate.edge.tracking import Track, Tracker
from privplate.vision.factory import build_reader
from privplate.vision.reader import PlateReader
from tests.degraded_video import FPS, make_degraded_video

START = datetime(2026, 1, 1, tzinfo=UTC)


class KeptTracks(Tracker):
    """The pipeline's tracker, keeping every closed track in memory for grading."""

    def __init__(self, window: float, reader: PlateReader) -> None:
        super().__init__(window, fusion=track_fusion("stacked", reader))
        self.closed: list[Track] = []
        #: Seconds spent making closing tracks' reads (registration, stacking, one OCR call).
        self.closing = 0.0

    def _close(self, tracks: list[Track]) -> list[Track]:
        started = time.perf_counter()
        closed = super()._close(tracks)
        self.closing += time.perf_counter() - started
        return closed

    def expire(self, now: datetime) -> list[Track]:
        closed = super().expire(now)
        self.closed.extend(closed)
        return closed

    def flush(self) -> list[Track]:
        closed = super().flush()
        self.closed.extend(closed)
        return closed


@dataclass
class Tally:
    cars: int = 0
    best_frame: int = 0
    #: The looks' OCR tables pooled slot by slot (edge.track_fusion = "slots").
    slots: int = 0
    #: The looks' crops stacked (edge.track_fusion = "stacked", the default).
    stacked: int = 0
    #: Cars with no track at all (never detected).
    missed: int = 0
    #: Cars some single frame of whose tracks read exactly: what pooling could hope to reach
    #: without inventing a reading no frame gave.
    any_frame: int = 0

    def add(self, other: Tally) -> None:
        self.cars += other.cars
        self.best_frame += other.best_frame
        self.slots += other.slots
        self.stacked += other.stacked
        self.missed += other.missed
        self.any_frame += other.any_frame

    def line(self, name: str) -> str:
        def pct(n: int) -> str:
            return f"{100 * n / max(self.cars, 1):5.1f}% ({n})"

        def gain(n: int) -> str:
            return f"{100 * (n - self.best_frame) / max(self.cars, 1):+.1f} points"

        return (
            f"  {name:4} {self.cars:4} cars: best frame {pct(self.best_frame)}; "
            f"slots {pct(self.slots)}, {gain(self.slots)}; "
            f"stacked {pct(self.stacked)}, {gain(self.stacked)}; "
            f"some frame {pct(self.any_frame)}; {self.missed} never detected"
        )


def grade(
    tracks: Sequence[Track],
    plates: Sequence[str],
    regions: Sequence[str],
    hold: int,
    reader: PlateReader,
) -> dict[str, Tally]:
    """Per region and over all: cars whose main track's best-frame / slot-pooled / stacked
    reading is right, and cars some frame of any of whose tracks read right."""
    pooled = SlotFusion(reader.decode)
    by_car: dict[int, Track] = {}
    texts: dict[int, set[str]] = {}
    for track in tracks:
        car = round((track.first_at - START).total_seconds() * FPS) // hold
        if car not in by_car or track.sightings > by_car[car].sightings:
            by_car[car] = track
        for look in track.looks:
            reading = reader.decode(track.best.detection, look.slots)
            if reading is not None:
                texts.setdefault(car, set()).add(compare_form(reading.best.text))
    tallies: dict[str, Tally] = {}
    for car, (plate, region) in enumerate(zip(plates, regions, strict=True)):
        tally = tallies.setdefault(region, Tally())
        tally.cars += 1
        main = by_car.get(car)
        if main is None:
            tally.missed += 1
            continue
        label = compare_form(plate)
        tally.best_frame += compare_form(main.best.best.text) == label
        tally.slots += compare_form(pooled.read(main.looks, main.best).best.text) == label
        tally.stacked += compare_form(main.final.best.text) == label
        tally.any_frame += label in texts.get(car, set())
    total = Tally()
    for tally in tallies.values():
        total.add(tally)
    return {"all": total, **dict(sorted(tallies.items()))}


def run_video(
    reader: PlateReader,
    make: Callable[[Path], int],
    rows: list[dict[str, str]],
    hold: int,
    title: str,
) -> None:
    plates = [r["plate"] for r in rows]
    with tempfile.TemporaryDirectory() as tmp, deployment() as dep, open(os.devnull, "w") as null:
        video = Path(tmp) / "cars.avi"
        frames = make(video)
        tracker = KeptTracks(dep.settings.edge.track_seconds, reader)
        pipeline = make_pipeline(reader, dep, plates, null, tracker=tracker)
        stats = pipeline.run(VideoSource(video, started_at=START))
        tallies = grade(tracker.closed, plates, [r["region"] for r in rows], hold, reader)
    print(
        f"{title}: {frames} frames ({len(rows)} cars x {hold}), {stats.plates} plates read, "
        f"{stats.reads} reads; stacking {1000 * tracker.closing / max(len(tracker.closed), 1):.1f}"
        f" ms per read ({stats.plates / max(len(tracker.closed), 1):.1f} looks)"
    )
    for name, tally in tallies.items():
        print(tally.line(name), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cars", type=int, default=330, help="photos used (both regions)")
    parser.add_argument("--hold", type=int, default=10, help="frames per car")
    parser.add_argument("--seed", type=int, default=16, help="degradation RNG seed")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain video")
    args = parser.parse_args(argv)
    if not (MODELS / "yolov8n-plate-640.onnx").is_file():
        sys.exit(f"shared models not found in {MODELS}; set PRIVPLATE_MODELS_DIR")
    rows = labelled(args.cars)
    reader = build_reader(settings_for(1))
    photos = [PHOTOS / r["filename"] for r in rows]
    run_video(
        reader,
        lambda path: make_degraded_video(path, photos, args.hold, seed=args.seed),
        rows,
        args.hold,
        f"degraded video (seed {args.seed})",
    )
    if not args.no_plain:
        run_video(
            reader,
            lambda path: make_video(path, rows, args.hold, drift=3),
            rows,
            args.hold,
            "plain video (benchmarks/edge.py make_video, moving cars)",
        )


if __name__ == "__main__":
    main()
