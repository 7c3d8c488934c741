"""The edge's health report: every ``edge.health_interval_seconds`` a signed ``POST
/devices/health`` with the version, the model files' sha256, per-camera frames per second,
last frame and last read times and dropped reads, and the spool's depth and oldest age.

Counts, rates and times only: nothing of a plate, a token or a read is in it. The reporter
reads its figures through two small interfaces, so it works with any edge that can say them:
``cameras`` returns one :class:`CameraStats` per camera (privplate.edge.snapshot's
``CameraSnapshot`` is one), and ``spool`` has ``depth()`` and ``oldest_age()``
(privplate.edge.spool.Spool). A report that cannot be sent is not queued: the next one, a
minute later, says everything again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from privplate import __version__
from privplate.devices.health import HealthReport
from privplate.edge.uplink import DeviceClient, UplinkError
from privplate.settings import Settings

log = logging.getLogger(__name__)
PATH = "/devices/health"


class CameraStats(Protocol):
    """What the report needs of one camera (read-only attributes)."""

    @property
    def camera_id(self) -> str: ...
    @property
    def frames_per_second(self) -> float: ...
    @property
    def last_frame_at(self) -> datetime | None: ...
    @property
    def last_read_at(self) -> datetime | None: ...
    @property
    def dropped_reads(self) -> int: ...


class SpoolStats(Protocol):
    def depth(self) -> int: ...
    def oldest_age(self, now: float | None = None) -> float | None: ...


def model_digests(settings: Settings) -> dict[str, str]:
    """{file name: sha256} of the model files this edge loads (found as the reader finds
    them, so a file swapped in beside the registry shows with its own digest)."""
    from privplate.vision.factory import models_dir  # noqa: PLC0415 - the edge extra
    from privplate.vision.models import load_registry, resolve, sha256_of  # noqa: PLC0415

    edge = settings.edge
    registry = load_registry()

    def explicit(paths: Sequence[Path | None]) -> list[Path | None]:
        return [settings.path(p) if p is not None else None for p in paths]

    wanted = (
        (edge.detector, explicit([edge.detector_path])),
        (edge.recognizer, explicit([edge.recognizer_path, edge.recognizer_config_path])),
    )
    digests: dict[str, str] = {}
    for name, paths in wanted:
        for path in resolve(
            registry[name],
            explicit=paths,
            models_dir=models_dir(settings),
            allow_unregistered=edge.allow_unregistered_models,
        ):
            digests[path.name] = sha256_of(path)
    return digests


class HealthReporter:
    """Builds and sends the report every ``interval`` seconds in a thread of its own."""

    def __init__(
        self,
        client: DeviceClient,
        *,
        cameras: Callable[[], Sequence[CameraStats]],
        spool: SpoolStats,
        models: Mapping[str, str],
        interval: float = 60.0,
        clock_offset: Callable[[], float | None] | None = None,
    ) -> None:
        self.client = client
        self.cameras = cameras
        self.spool = spool
        self.models = dict(models)
        self.interval = interval
        self.clock_offset = clock_offset
        self.sent = 0
        self.failures = 0
        #: The server's clock offset for this device in its last answer (seconds).
        self.server_offset: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def build(self) -> HealthReport:
        age = self.spool.oldest_age()
        return HealthReport.model_validate(
            {
                "version": __version__,
                "interval_seconds": self.interval,
                "models": self.models,
                "cameras": [
                    {
                        "camera_id": c.camera_id,
                        "frames_per_second": round(float(c.frames_per_second), 3),
                        "last_frame_at": c.last_frame_at,
                        "last_read_at": c.last_read_at,
                        "dropped_reads": int(c.dropped_reads),
                    }
                    for c in self.cameras()
                ],
                "spool_depth": self.spool.depth(),
                "spool_oldest_age_seconds": None if age is None else round(age, 1),
                "clock_offset_seconds": self.clock_offset() if self.clock_offset else None,
            }
        )

    def body(self) -> bytes:
        """The report as sent: compact JSON."""
        return json.dumps(
            self.build().model_dump(mode="json", exclude_none=True), separators=(",", ":")
        ).encode()

    def send_once(self) -> None:
        """Build and send one report; UplinkError if the server did not take it."""
        answer = self.client.request("POST", PATH, self.body())
        self.sent += 1
        if isinstance(answer, dict) and "clock_offset_seconds" in answer:
            self.server_offset = float(answer["clock_offset_seconds"])

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_once()
            except UplinkError as exc:
                self.failures += 1
                log.warning("health report not sent (%s); next in %.0f s", exc, self.interval)
            except ValueError as exc:  # a figure out of the report's bounds
                self.failures += 1
                log.error("health report could not be built (%s)", type(exc).__name__)
            self._stop.wait(self.interval)

    def start(self) -> None:
        if self._thread is not None or self.interval <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="privplate-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.client.timeout + 5)
            self._thread = None
