"""Edge benchmarks: OCR, detector, end-to-end frames/s against fast-alpr, alert latency.

Measures, on this machine, with the shared models (``PRIVPLATE_MODELS_DIR``):

1. OCR ms per plate, one crop per call and batched, with 1 onnxruntime thread and all threads;
2. detector ms per frame at 384 and 640, 1 thread and all threads;
3. end-to-end frames/s on the shared photos and on a video assembled from them (each photo
   held for ``--hold`` frames with mild sensor noise), through privplate's edge pipeline and,
   in the same run, through fast-alpr's ``ALPR`` built with the same two model files: a
   ``BaseDetector`` around privplate's detector class on the same ONNX file run the way
   fast-alpr runs a detector (square letterbox, its default ``detector_conf_thresh`` 0.4),
   ``ocr_model_path`` for the OCR; fast-alpr is timed with onnxruntime's default threads (its
   default) and with one thread, and the faster is the reference for the ratio
   privplate / fast-alpr. fast-alpr's detector session is made as open-image-models makes
   one (onnxruntime's own options, or one thread), not with privplate's. privplate is timed
   as configured by default, with the other ``edge.threads`` (1, or 0: every core),
   serially, and with the square detector. Times are medians of interleaved rounds, with
   their spread, and CPU ms per frame (all threads); video lines also count the cars
   recognised (exact best reading), by each side;
4. frame-to-alert latency p50/p95 (every labelled plate on the hotlist).

Only counts and timings are printed, never plate text. Needs the edge and bench extras.

    .venv/bin/python benchmarks/edge.py --quick     # about a minute
    .venv/bin/python benchmarks/edge.py             # over 25 minutes on 2 cores
    .venv/bin/python benchmarks/edge.py --quick --only photos   # just the still photos
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from fast_alpr import ALPR
from fast_alpr.base import BaseDetector
from open_image_models.detection.core.base import BoundingBox, DetectionResult

from privplate.deployment import Deployment, init_deployment
from privplate.edge.alerts import EdgeAlerts
from privplate.edge.labels import compare_form
from privplate.edge.pipeline import EdgePipeline
from privplate.edge.sources import ImageSource, SettledGate, VideoSource
from privplate.edge.tracking import Tracker
from privplate.sealing import generate_keypair
from privplate.settings import load_settings
from privplate.tokens import canonical_plate, plate_token
from privplate.vision.crops import crop
from privplate.vision.detector import YoloPlateDetector
from privplate.vision.factory import build_reader, build_recognizer, with_options
from privplate.vision.reader import PlateReader
from privplate.vision.types import Box

ROOT = Path(__file__).resolve().parents[1]
# Resolved now: settings resolve a relative models_dir against the deployment's folder, but the
# README's `PRIVPLATE_MODELS_DIR=../shared/models` means from where the command was started.
MODELS = Path(os.environ.get("PRIVPLATE_MODELS_DIR") or ROOT.parent / "shared" / "models").resolve()
PHOTOS = MODELS.parent / "data" / "plates_endtoend"
#: fast-alpr's default ``detector_conf_thresh``.
FAST_ALPR_CONF = 0.4


def ms(seconds: float, count: int) -> str:
    return f"{1000 * seconds / max(count, 1):.2f}"


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def labelled(limit: int) -> list[dict[str, str]]:
    with (PHOTOS / "labels.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Alternate regions so a quick run still sees both.
    us = [r for r in rows if r["region"] == "us"]
    eu = [r for r in rows if r["region"] == "eu"]
    mixed = [r for pair in zip(us, eu, strict=False) for r in pair] + us[len(eu) :]
    return mixed[:limit]


def settings_for(threads: int | None, detector: str = "yolov8n-plate-640") -> Any:
    """Settings with ``threads`` onnxruntime threads per model (None: the default)."""
    edge: dict[str, Any] = {"detector": detector}
    if threads is not None:
        edge["threads"] = threads
    return load_settings(
        Path(tempfile.gettempdir()) / "privplate-bench-none", models_dir=MODELS, edge=edge
    )


def bench_ocr(rows: list[dict[str, str]], threads: int) -> None:
    recognizer = build_recognizer(settings_for(threads))
    crops = []
    for row in rows:
        frame = cv2.imread(str(PHOTOS / row["filename"]))
        x, y, w, h = (float(row[k]) for k in "xywh")
        crops.append(crop(frame, Box(x, y, x + w, y + h)))
    recognizer.recognize(crops[:4])  # warm-up
    one = timed(lambda: [recognizer.recognize([c]) for c in crops])
    batched = timed(
        lambda: [recognizer.recognize(crops[i : i + 32]) for i in range(0, len(crops), 32)]
    )
    label = "1 thread" if threads == 1 else "all threads"
    print(
        f"ocr ({label}): {ms(one, len(crops))} ms/plate batch 1, "
        f"{ms(batched, len(crops))} ms/plate batch 32"
    )


def bench_detector(frames: list[np.ndarray], size: int, threads: int, rect: bool) -> None:
    detector = YoloPlateDetector(
        MODELS / f"yolov8n-plate-{size}.onnx", threads=threads, confidence=0.05, rect=rect
    )
    detector.detect(frames[0])
    elapsed = timed(lambda: [detector.detect(f) for f in frames])
    label = "1 thread" if threads == 1 else "all threads"
    shape = "rectangular" if detector.rect is not None else "square"
    print(f"detector {size} {shape} ({label}): {ms(elapsed, len(frames))} ms/frame")


class Discard:
    def put(self, item: object) -> None:
        del item


class LabelFeed:
    def __init__(self, dep: Deployment, plates: Sequence[str]) -> None:
        self.dep = dep
        self.plates = [
            canonical_plate(compare_form(p)) for p in plates if 0 < len(compare_form(p)) <= 10
        ]

    def epoch_tokens(self, epoch_id: int) -> list[tuple[bytes, str]]:
        key = self.dep.keyring.key_for(epoch_id).key
        return [(plate_token(key, p), "bench") for p in self.plates]


def make_pipeline(
    reader: PlateReader,
    dep: Deployment,
    plates: Sequence[str],
    out: Any,
    *,
    stride: int = 1,
    tracker: Tracker | None = None,
) -> EdgePipeline:
    """The edge pipeline as `privplate edge run` builds it; ``stride`` > 1 thins detection
    while every car in view is read (SettledGate, edge.settled_stride); ``tracker`` is the
    default's (edge.track_seconds, edge.track_fusion: stacking) unless given
    (benchmarks/fusion.py gives each way of fusing its own)."""
    _, public = generate_keypair()
    edge = dep.settings.edge
    tracker = tracker or Tracker.configured(edge, reader)
    settled = partial(tracker.settled, edge.settled_confidence)
    return EdgePipeline(
        reader,
        Discard(),
        camera_id="bench",
        keys=dep.keyring,
        evidence_key=public,
        alerts=EdgeAlerts(LabelFeed(dep, plates), out=out),
        tracker=tracker,
        motion=SettledGate(edge.motion_threshold, settled, stride=stride),
    )


class SameDetector(BaseDetector):  # type: ignore[misc]
    """fast-alpr BaseDetector around a privplate detector object (same model file)."""

    def __init__(self, detector: YoloPlateDetector, conf_thresh: float = FAST_ALPR_CONF) -> None:
        self.detector = detector
        self.conf_thresh = conf_thresh
        self._box = BoundingBox
        self._result = DetectionResult

    def predict(self, frame: np.ndarray) -> list[Any]:
        return [
            self._result(
                label="plate",
                confidence=d.score,
                bounding_box=self._box(int(d.box.x1), int(d.box.y1), int(d.box.x2), int(d.box.y2)),
            )
            for d in self.detector.detect(frame)
            if d.score >= self.conf_thresh
        ]


def fast_alpr_for(threads: int | None) -> Any:
    """fast-alpr with the shared model files: the detector square, as fast-alpr runs its
    own; ``threads`` None is fast-alpr's default (onnxruntime's: every core)."""
    options = None
    if threads is not None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    path = MODELS / "yolov8n-plate-640.onnx"
    detector = YoloPlateDetector(path, confidence=FAST_ALPR_CONF, rect=False)
    # Its session as open-image-models makes one: onnxruntime's options (spinning threads on
    # every core) or fast-alpr's one-thread ones, not privplate's.
    detector.session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return ALPR(
        detector=SameDetector(detector),
        ocr_model_path=MODELS / "cct_xs_v1_global.onnx",
        ocr_config_path=MODELS / "cct_xs_v1_global_plate_config.yaml",
        ocr_device="cpu",
        ocr_sess_options=options,
    )


def video_frames(path: Path) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def make_video(path: Path, rows: list[dict[str, str]], hold: int, *, drift: int = 0) -> int:
    """Each photo for ``hold`` frames with sensor noise; ``drift`` pixels of movement per
    frame make every frame differ (a car driving through) so motion gating cannot skip it."""
    rng = np.random.default_rng(7)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (1280, 720))
    count = 0
    for row in rows:
        photo = cv2.imread(str(PHOTOS / row["filename"]))
        scale = min(1280 / photo.shape[1], 720 / photo.shape[0])
        photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)))
        for step in range(hold):
            canvas = np.full((720, 1280, 3), 40, dtype=np.uint8)
            dx, dy = step * drift, step * drift // 2
            h, w = min(photo.shape[0], 720 - dy), min(photo.shape[1], 1280 - dx)
            canvas[dy : dy + h, dx : dx + w] = photo[:h, :w]
            noise = rng.normal(0, 2.0, canvas.shape)  # sensor noise: no two frames are equal
            writer.write(np.clip(canvas + noise, 0, 255).astype(np.uint8))
            count += 1
    writer.release()
    return count


@contextmanager
def deployment() -> Iterator[Deployment]:
    with tempfile.TemporaryDirectory() as tmp:
        init_deployment(Path(tmp) / "dep")
        with Deployment.open(Path(tmp) / "dep", actor="bench") as dep:
            yield dep


def rounds(
    reps: int, *runs: Callable[[], Any], cpu: list[list[float]] | None = None
) -> list[list[float]]:
    """Each run's time in each of ``reps`` rounds, the runs interleaved within a round so a
    neighbour's load on this shared machine hits all of them alike; ``cpu`` gets each run's
    process CPU seconds (every thread), which a neighbour's load hardly changes."""
    times: list[list[float]] = [[] for _ in runs]
    if cpu is not None:
        cpu[:] = [[] for _ in runs]
    for _ in range(reps):
        for i, run in enumerate(runs):
            started = time.process_time()
            times[i].append(timed(run))
            if cpu is not None:
                cpu[i].append(time.process_time() - started)
    return times


def rate(count: int, times: list[float]) -> str:
    """Frames/s of the median round, and the spread over rounds (the machine's noise)."""
    rates = sorted(count / t for t in times)
    return f"{count / statistics.median(times):6.2f} ({rates[0]:.2f}-{rates[-1]:.2f})"


def cars_read(alpr: Any, frames: Iterator[np.ndarray], plates: Sequence[str], hold: int) -> int:
    """Cars whose labelled plate is fast-alpr's most frequent reading over the car's frames
    (compared in memory, never printed)."""
    texts: list[list[str]] = [[] for _ in plates]
    for n, frame in enumerate(frames):
        for result in alpr.predict(frame):
            if result.ocr is not None and result.ocr.text:
                texts[n // hold].append(compare_form(result.ocr.text))
    return sum(
        bool(seen) and max(set(seen), key=seen.count) == compare_form(plate)
        for seen, plate in zip(texts, plates, strict=True)
    )


def bench_photos(
    reps: int, theirs: dict[str, Any], paths: list[str], ours: dict[str, Callable[[], Any]]
) -> str:
    """Photos frames/s of each fast-alpr setting and of each of ``ours``, in interleaved
    rounds; ratios against fast-alpr's faster setting, whose name is returned."""
    n = len(paths)
    cpu: list[list[float]] = []
    times = rounds(
        reps,
        *(lambda alpr=alpr: [alpr.predict(p) for p in paths] for alpr in theirs.values()),
        *ours.values(),
        cpu=cpu,
    )
    their_times = dict(zip(theirs, times, strict=False))
    best_name = min(their_times, key=lambda name: statistics.median(their_times[name]))
    reference = statistics.median(their_times[best_name])
    print(
        f"photos ({n}), median of {reps} rounds, frames/s (range; ratio to fast-alpr; "
        "CPU ms per frame, all threads)"
    )
    for k, (name, took) in enumerate(their_times.items()):
        print(f"  fast-alpr, {name:39} {rate(n, took)}         {ms(statistics.median(cpu[k]), n)}")
    for k, (name, took) in enumerate(zip(ours, times[len(theirs) :], strict=True), len(theirs)):
        ratio = reference / statistics.median(took)
        print(
            f"  privplate {name:38} {rate(n, took)}  {ratio:.2f}x  "
            f"{ms(statistics.median(cpu[k]), n)}"
        )
    print(f"  (ratios against fast-alpr {best_name}, its faster setting here)")
    return best_name


def bench_end_to_end(rows: list[dict[str, str]], hold: int, reps: int, only: str = "") -> None:
    settings = settings_for(None)
    reader = build_reader(settings)
    threads = settings.edge.threads
    square = with_options(reader)
    square.detector = YoloPlateDetector(
        MODELS / "yolov8n-plate-640.onnx", threads=threads, confidence=0.05, rect=False
    )
    other = 1 if threads != 1 else 0
    alike = build_reader(settings_for(other))
    theirs = {"default threads": fast_alpr_for(None), "1 thread": fast_alpr_for(1)}
    plates = [r["plate"] for r in rows]
    with tempfile.TemporaryDirectory() as tmp, deployment() as dep, open(os.devnull, "w") as null:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i, row in enumerate(rows):
            (folder / f"{i:05d}.jpg").symlink_to(PHOTOS / row["filename"])
        paths = sorted(str(p) for p in folder.iterdir())
        for alpr in theirs.values():
            alpr.predict(paths[0])
        latencies: list[float] = []

        def ours_files(variant: PlateReader, overlap: bool) -> Callable[[], Any]:
            def run() -> None:
                pipeline = make_pipeline(variant, dep, plates, null)
                pipeline.run(ImageSource(folder), overlap=overlap)
                latencies.extend(pipeline.stats.alert_latencies)

            return run

        best_name = "default threads"
        if only != "video":
            # Still photos: every photo is a new car. The pipeline reads files (decoding, tokens,
            # evidence sealing included), as fast-alpr's predict(path) does.
            best_name = bench_photos(
                reps,
                theirs,
                paths,
                {
                    f"pipeline (default, edge.threads {threads})": ours_files(reader, overlap=True),
                    f"pipeline, edge.threads {other}": ours_files(alike, overlap=True),
                    "pipeline, no overlap": ours_files(reader, overlap=False),
                    "pipeline, square detector": ours_files(square, overlap=True),
                },
            )
        if only != "photos":
            # Without the photos part, both fast-alpr settings are timed on the video too.
            candidates = [best_name] if only != "video" else list(theirs)
            # Video: each photo held for `hold` frames, still (a queue at a gate) and moving.
            stride = settings.edge.settled_stride
            for kind, drift in (("still cars", 0), ("moving cars", 3)):
                video = Path(tmp) / f"cars-{drift}.avi"
                frames = make_video(video, rows, hold, drift=drift)
                runs: dict[int, list[EdgePipeline]] = {stride: [], 1: []}

                def ours_video(
                    video: Path = video, step: int = 1, runs: dict[int, list[EdgePipeline]] = runs
                ) -> None:
                    runs[step].append(make_pipeline(reader, dep, plates, null, stride=step))
                    runs[step][-1].run(VideoSource(video))

                *t_theirs_v, v_ours, v_every = rounds(
                    reps,
                    *(
                        lambda video=video, alpr=theirs[c]: [
                            alpr.predict(f) for f in video_frames(video)
                        ]
                        for c in candidates
                    ),
                    partial(ours_video, video, stride),
                    partial(ours_video, video, 1),
                )
                name, v_theirs = min(
                    zip(candidates, t_theirs_v, strict=True),
                    key=lambda item: statistics.median(item[1]),
                )
                alpr = theirs[name]
                their_cars = cars_read(alpr, video_frames(video), plates, hold)
                reference = statistics.median(v_theirs)
                print(
                    f"video, {kind} ({frames} frames, {len(rows)} cars x {hold}), median of {reps}:"
                    f" fast-alpr ({name}) {rate(frames, v_theirs)} frames/s, {their_cars} cars read"
                )
                for step, took in ((stride, v_ours), (1, v_every)):
                    stats = runs[step][-1].stats
                    label = f"settled stride {step}" + (" (default)" if step == stride else "")
                    print(
                        f"  privplate {label:28} {rate(frames, took)} frames/s "
                        f"{reference / statistics.median(took):.2f}x ({stats.detected_frames} "
                        f"frames detected, {stats.reads} reads, {stats.alerts} cars read)"
                    )
        if latencies:
            latencies.sort()
            p50 = statistics.median(latencies)
            p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
            print(
                f"frame-to-alert latency ({len(latencies)} alerts on photos): "
                f"p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few photos, short video")
    parser.add_argument("--photos", type=int, default=0, help="photos (default 20 quick, 120)")
    parser.add_argument("--hold", type=int, default=30, help="video frames per car")
    parser.add_argument("--reps", type=int, default=0, help="rounds (default 2 quick, 3)")
    parser.add_argument(
        "--only",
        choices=("photos", "video"),
        default="",
        help="only the end-to-end photos, or video, part (no OCR and detector lines)",
    )
    args = parser.parse_args(argv)
    if not (MODELS / "yolov8n-plate-640.onnx").is_file():
        sys.exit(f"shared models not found in {MODELS}; set PRIVPLATE_MODELS_DIR")
    count = args.photos or (20 if args.quick else 120)
    hold = 15 if args.quick else args.hold
    rows = labelled(count)
    print(f"edge benchmark: {len(rows)} photos, {os.cpu_count()} cores")
    if not args.only:
        frames = [cv2.imread(str(PHOTOS / r["filename"])) for r in rows]
        for threads in (1, 0):
            bench_ocr(rows, threads)
        for size in (384, 640):
            for threads in (1, 0):
                for rect in (False, True):
                    bench_detector(frames, size, threads, rect)
    bench_end_to_end(rows, hold, args.reps or (2 if args.quick else 3), args.only)


if __name__ == "__main__":
    main()
