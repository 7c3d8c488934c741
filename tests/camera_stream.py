"""A network camera for the multi-host tests: serves a folder of photos as an MJPEG stream over
HTTP (multipart/x-mixed-replace, as IP cameras do) at a steady frame rate, in a loop, so
`privplate edge run --source http://...` reads it live, paced like a real camera.

Run as a script inside a test host: ``python tests/camera_stream.py FOLDER PORT FPS [STALL]``.
Every photo is letterboxed to one frame size: a stream's frames share one size.

With STALL (a file path), the camera stalls while that file exists: it sends no frame but keeps
every connection open (and accepts new ones), as a hung encoder or a frozen PTZ does; the frames
resume on the same connections once the file is removed. A file, not a signal, so a test on
another host (tests/hosts.py) can stall it the same way.
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

WIDTH, HEIGHT = 1280, 720
BOUNDARY = "frame"


def jpeg_frames(folder: Path) -> list[bytes]:
    frames = []
    for path in sorted(folder.iterdir()):
        image = cv2.imread(str(path))
        if image is None:
            continue
        height, width = image.shape[:2]
        scale = min(WIDTH / width, HEIGHT / height)
        image = cv2.resize(image, (int(width * scale), int(height * scale)))
        image = cv2.copyMakeBorder(
            image, 0, HEIGHT - image.shape[0], 0, WIDTH - image.shape[1], cv2.BORDER_CONSTANT
        )
        ok, encoded = cv2.imencode(".jpg", image)
        if ok:
            frames.append(encoded.tobytes())
    if not frames:
        raise SystemExit(f"no readable photo in {folder}")
    return frames


def serve(folder: Path, port: int, fps: float, stall: Path | None = None) -> None:
    frames = jpeg_frames(folder)

    def stalled() -> bool:
        return stall is not None and stall.exists()

    class Stream(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.end_headers()
            due = time.monotonic()
            index = 0
            try:
                while True:
                    if stalled():
                        time.sleep(0.05)
                        due = time.monotonic()  # no burst of "late" frames on resuming
                        continue
                    frame = frames[index % len(frames)]
                    index += 1
                    head = b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                    self.wfile.write(head % (BOUNDARY.encode(), len(frame)) + frame + b"\r\n")
                    self.wfile.flush()
                    due += 1.0 / fps
                    time.sleep(max(0.0, due - time.monotonic()))
            except (BrokenPipeError, ConnectionResetError):
                return  # the edge went away

        def log_message(self, *_: object) -> None:
            return  # a request log line per edge connection says nothing here

    ThreadingHTTPServer(("127.0.0.1", port), Stream).serve_forever()


if __name__ == "__main__":
    stall_file = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    serve(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), stall_file)
