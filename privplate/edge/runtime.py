"""Assembling an edge from the deployment's settings: single-box or connected to a server."""

from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TextIO

from privplate.deployment import Deployment
from privplate.devices.protocol import DeviceKey
from privplate.edge.alerts import EdgeAlerts, HotlistFeed, Webhook
from privplate.edge.config import EdgeConfig
from privplate.edge.health import HealthReporter, model_digests
from privplate.edge.pipeline import EdgePipeline
from privplate.edge.reads import KeySource
from privplate.edge.runner import EdgeRunner, Lane
from privplate.edge.snapshot import EdgeSnapshot, edge_snapshot
from privplate.edge.sources import ImageSource, MotionGate, SettledGate, Source, open_source
from privplate.edge.spool import Spool
from privplate.edge.tracking import Tracker
from privplate.edge.uplink import (
    DeviceClient,
    HttpUplink,
    LocalUplink,
    ServerHotlistFeed,
    ServerIdentity,
    ServerKeys,
    Uplink,
    UplinkWorker,
)
from privplate.errors import ConfigError, NotFound
from privplate.services import Services
from privplate.settings import Settings
from privplate.store.cameras import get_camera, list_cameras
from privplate.vision.reader import PlateReader

log = logging.getLogger(__name__)


def write_device_key(path: Path, device_id: str) -> DeviceKey:
    """Create this edge's Ed25519 key (mode 0600); never overwrites an existing one."""
    if path.exists():
        raise ConfigError(f"{path} already exists; remove it first to make a new device key")
    key = DeviceKey.generate(device_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"device_id": device_id, "seed": key.seed.hex()}, handle)
    return key


def read_device_key(path: Path) -> DeviceKey:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DeviceKey(str(data["device_id"]), bytes.fromhex(data["seed"]))
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"device key {path} is missing or unreadable; create one with "
            "`privplate edge keygen --device-id ID` and register its public key on the server"
        ) from None


class LocalHotlistFeed:
    """Single-box mode: hotlist tokens from the deployment's own hotlists."""

    def __init__(self, services: Services) -> None:
        self.tokens = services.hotlist_tokens

    def epoch_tokens(self, epoch_id: int) -> list[tuple[bytes, str]]:
        return self.tokens.epoch_tokens(epoch_id)


@dataclass
class Edge:
    """One edge process: its cameras (one lane each), one spool and one uplink."""

    lanes: list[Lane]
    spool: Spool
    worker: UplinkWorker
    mode: str
    #: onnxruntime intra-op threads per model run (edge.threads; 0: every core).
    threads: int = 1

    @property
    def pipeline(self) -> EdgePipeline:
        """The pipeline of a one-camera edge."""
        if len(self.lanes) != 1:
            raise ValueError(f"this edge has {len(self.lanes)} cameras; use edge.lanes")
        return self.lanes[0].pipeline

    def run(self, stop: threading.Event | None = None) -> None:
        """Every camera until its source ends or ``stop`` is set (Ctrl-C sets it)."""
        EdgeRunner(self.lanes, detectors=detector_threads(self.threads)).run(stop)

    def snapshot(self) -> EdgeSnapshot:
        """Per-camera figures, spool depth and the oldest spooled read's age, uplink status."""
        return edge_snapshot(self.lanes, self.spool, self.worker, self.mode)


def enrolled_cameras(settings: Settings, config: EdgeConfig) -> list[str]:
    """Each source's camera on a connected edge. An enrolled edge (`privplate edge enrol`)
    knows its cameras: a one-camera device needs no --camera, and a camera it was not
    enrolled for is refused here rather than by the server batch after batch. The enrolment
    counts only while edge.server_url is still the server it was enrolled with."""
    from privplate.edge.enrolment import read_enrolment  # noqa: PLC0415 - connected edges only

    enrolment = read_enrolment(settings)
    if enrolment is not None and enrolment.server_url != settings.edge.server_url:
        enrolment = None
    allowed = list(enrolment.cameras) if enrolment is not None else []
    cameras = []
    for source in config.sources:
        camera = source.camera
        if camera is None:
            if len(allowed) != 1:
                known = f" (enrolled for {', '.join(allowed)})" if allowed else ""
                raise ConfigError(f"give --camera ID: the camera this device reports for{known}")
            camera = allowed[0]
        elif enrolment is not None and camera not in allowed:
            raise ConfigError(
                f"camera {camera!r} is not one this device was enrolled for "
                f"({', '.join(allowed)}); enrol it for that camera on the server first"
            )
        cameras.append(camera)
    return cameras


def detector_threads(threads: int, cores: int | None = None) -> int:
    """Detector threads for an edge whose model runs use ``threads`` intra-op threads each:
    together they fill the cores without competing for them (the runner also caps them at
    one per camera)."""
    cores = cores or os.cpu_count() or 1
    if threads <= 0:
        return 1  # each run already uses every core
    return max(1, cores // threads)


def pick_camera(dep: Deployment, camera_id: str | None) -> str:
    if camera_id is None:
        cameras = [c for c in list_cameras(db=dep.db) if c.active]
        if len(cameras) != 1:
            raise ConfigError(
                "give --camera ID (this deployment has "
                f"{len(cameras)} active cameras; register one with `privplate cameras add ID`)"
            )
        return cameras[0].id
    try:
        camera = get_camera(db=dep.db, camera_id=camera_id)
    except NotFound:
        raise ConfigError(
            f"camera {camera_id!r} is not registered in this deployment; register it first with "
            f"`privplate cameras add {camera_id}`"
        ) from None
    if not camera.active:
        raise ConfigError(f"camera {camera_id!r} is retired; register an active camera")
    return camera.id


def build_edge(
    settings: Settings,
    reader: PlateReader,
    stack: ExitStack,
    config: EdgeConfig,
    *,
    out: TextIO | None = None,
    from_start: bool = False,
    sources: list[Source] | None = None,
) -> Edge:
    """The edge for ``config``: one lane per source, all sharing ``reader`` (one detector and
    one recognizer session), the alerts, the spool and the uplink.

    ``sources`` overrides opening each configured source (tests give ready-made ones)."""
    edge = settings.edge
    opened = sources if sources is not None else [open_source(s.source) for s in config.sources]
    spool = Spool(settings.path(edge.spool_file))
    stack.callback(spool.close)
    webhook = Webhook(edge.webhook_url) if edge.webhook_url else None
    if webhook is not None:
        stack.callback(webhook.close)
    if edge.server_url:
        cameras = enrolled_cameras(settings, config)
        client = DeviceClient(
            edge.server_url,
            read_device_key(settings.path(edge.device_key_file)),
            timeout=edge.uplink_timeout_seconds,
        )
        fold = settings.plates.fold_table
        from privplate.edge.enrolment import pinned_server_key  # noqa: PLC0415 - as above

        # Epoch keys and uploads only from the server holding the pinned key (uplink.py).
        identity = ServerIdentity(client, pinned_server_key(settings))
        keys: KeySource = ServerKeys(client, spool, fold=fold, identity=identity)
        # Short timeout: the feed is asked from the camera loop.
        feed: HotlistFeed | None = ServerHotlistFeed(
            DeviceClient(edge.server_url, client.key, timeout=5.0)
        )
        uplink: Uplink = HttpUplink(client, identity)
        mode = f"server {edge.server_url}"
    else:
        dep = stack.enter_context(Deployment.open(settings.home, settings=settings, actor="edge"))
        cameras = [pick_camera(dep, s.camera) for s in config.sources]
        # The domain layer the server uses too: hotlists, alerts, webhooks and the one ingest.
        services = stack.enter_context(Services.open(dep))
        # Deliveries left in the outbox by the last run go out now, not at the next alert.
        services.webhooks.start()
        keys, feed, fold = dep.keyring, LocalHotlistFeed(services), dep.fold
        uplink = LocalUplink(services)
        mode = "single-box"
    alerts = EdgeAlerts(feed, out=out, webhook=webhook)
    worker = UplinkWorker(
        spool, uplink, batch_reads=edge.uplink_batch_reads, linger=edge.uplink_linger_seconds
    )
    lanes = []
    for source_config, camera_id, source in zip(config.sources, cameras, opened, strict=True):
        threshold = source_config.gate_threshold(edge)
        tracker = Tracker.configured(edge, reader)
        motion: MotionGate | None = MotionGate(threshold) if threshold > 0 else None
        if not isinstance(source, ImageSource) and edge.settled_stride > 1:
            # Video and streams: while every car in view is read, detect every n-th moving
            # frame only. A folder's photos are each a car of their own: never thinned.
            motion = SettledGate(
                threshold,
                partial(tracker.settled, edge.settled_confidence),
                stride=edge.settled_stride,
            )
        pipeline = EdgePipeline(
            reader,
            spool,
            camera_id=camera_id,
            keys=keys,
            fold=fold,
            evidence_key=settings.evidence_public_key_bytes,
            alerts=alerts,
            tracker=tracker,
            motion=motion,
            frame_side=edge.evidence_frame_side,
            max_tokens=min(settings.ingest.max_tokens_per_read, 1 + edge.alternates),
            roi=source_config.roi,
        )
        pipeline.on_hit = worker.hurry
        lanes.append(
            Lane(
                pipeline,
                source,
                max_fps=source_config.fps(edge),
                spool=spool,
                from_start=from_start,
            )
        )
    built = Edge(lanes, spool, worker, mode, threads=edge.threads)
    if edge.server_url and edge.health_interval_seconds > 0:
        # Signed health every minute: the server raises silent-camera and backlog alerts.
        reporter = HealthReporter(
            DeviceClient(edge.server_url, client.key, timeout=edge.uplink_timeout_seconds),
            cameras=lambda: built.snapshot().cameras,
            spool=spool,
            models=model_digests(settings),
            interval=edge.health_interval_seconds,
        )
        reporter.start()
        stack.callback(reporter.stop)
    return built
