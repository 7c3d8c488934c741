"""Three cameras in one edge process against three edge processes (one camera each).

Builds three videos from the shared photos (each car held for ``--hold`` frames, drifting a
few pixels per frame so the motion gate lets every frame through), a single-box deployment
with three cameras, and runs

1. ``privplate edge run --config edge.toml`` with the three videos: one process, one detector
   and one recognizer session;
2. three ``privplate edge run --source VIDEO --camera ID`` at the same time (a spool each).

For each it prints the frames read, wall seconds (model loading included: every process
loads its own models), total frames/s and the sum of the processes' peak RSS, then the ratios.
Only counts, times and memory are printed, never plate text. Needs the edge extra.

    PRIVPLATE_MODELS_DIR=../shared/models .venv/bin/python benchmarks/edge_multicam.py --quick
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from privplate.deployment import Deployment, init_deployment

ROOT = Path(__file__).resolve().parents[1]
# Resolved now: settings resolve a relative models_dir against the deployment's folder, but the
# README's `PRIVPLATE_MODELS_DIR=../shared/models` means from where the command was started.
MODELS = Path(os.environ.get("PRIVPLATE_MODELS_DIR") or ROOT.parent / "shared" / "models").resolve()
PHOTOS = MODELS.parent / "data" / "plates_endtoend"
CAMERAS = ("cam-1", "cam-2", "cam-3")
SUMMARY = re.compile(r"^(\d+) frames, (\d+) reads", re.MULTILINE)


def make_video(path: Path, files: list[str], hold: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8.0, (1280, 720))
    for name in files:
        photo = cv2.imread(str(PHOTOS / name))
        scale = min(1200 / photo.shape[1], 680 / photo.shape[0])
        photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)))
        for step in range(hold):
            canvas = np.full((720, 1280, 3), 60, dtype=np.uint8)
            x, y = 10 + 2 * step, 10 + step
            canvas[y : y + photo.shape[0], x : x + photo.shape[1]] = photo[: 720 - y, : 1280 - x]
            writer.write(canvas)
    writer.release()


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) of a live process, in KiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def run_all(commands: list[tuple[list[str], dict[str, str]]]) -> tuple[float, int, int]:
    """Start every command at once; (wall seconds, frames read, sum of peak RSS in KiB)."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True
        )
        for argv, env in commands
    ]
    peaks = [0] * len(procs)
    while any(p.poll() is None for p in procs):
        for i, proc in enumerate(procs):
            if proc.poll() is None:
                peaks[i] = max(peaks[i], peak_rss_kib(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    frames = 0
    for proc in procs:
        err = proc.stderr.read() if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"an edge run failed ({proc.returncode}): {err[-2000:]}")
        found = SUMMARY.search(err)
        frames += int(found.group(1)) if found else 0
    return wall, frames, sum(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cars per camera")
    parser.add_argument("--cars", type=int, default=6, help="cars per camera")
    parser.add_argument("--hold", type=int, default=12, help="frames per car")
    args = parser.parse_args()
    cars = 3 if args.quick else args.cars
    hold = 8 if args.quick else args.hold
    with (PHOTOS / "labels.csv").open(newline="") as handle:
        files = [r["filename"] for r in csv.DictReader(handle)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = work / "deployment"
        init_deployment(home)
        with Deployment.open(home) as dep:
            for camera in CAMERAS:
                dep.add_camera(camera)
        videos = []
        for n in range(len(CAMERAS)):
            video = work / f"video-{n}.avi"
            make_video(video, files[n * cars : (n + 1) * cars], hold)
            videos.append(video)
        config = work / "edge.toml"
        config.write_text(
            "".join(
                f'[[sources]]\ncamera = "{c}"\nsource = "{v}"\n'
                for c, v in zip(CAMERAS, videos, strict=True)
            ),
            encoding="utf-8",
        )
        env = {**os.environ, "PRIVPLATE_MODELS_DIR": str(MODELS)}
        edge = [sys.executable, "-m", "privplate.cli.main", "edge", "run", "--no-display"]
        where = ["--dir", str(home), "--from-start"]
        one = run_all([([*edge, "--config", str(config), *where], env)])
        three = run_all(
            [
                (
                    [*edge, "--source", str(v), "--camera", c, *where],
                    {**env, "PRIVPLATE_EDGE__SPOOL_FILE": str(work / f"spool-{c}.db")},
                )
                for c, v in zip(CAMERAS, videos, strict=True)
            ]
        )
    print(
        f"cpu cores {os.cpu_count()}; 3 cameras x {cars} cars x {hold} frames (1280x720), "
        "detector yolov8n-plate-640, edge.threads 1"
    )
    for label, (wall, frames, rss) in (("one process", one), ("three processes", three)):
        print(
            f"{label:16s} {frames:5d} frames  {wall:6.1f} s  {frames / wall:6.2f} frames/s  "
            f"peak RSS sum {rss / 1024:7.1f} MiB"
        )
    fps_one, fps_three = one[1] / one[0], three[1] / three[0]
    print(
        f"one process / three processes: frames/s x{fps_one / fps_three:.2f}, "
        f"memory x{one[2] / max(three[2], 1):.2f}"
    )


if __name__ == "__main__":
    main()
