"""Assembling an edge from the deployment's settings: single-box or connected to a server."""

from __future__ import annotations

import json
import logging
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from privplate.deployment import Deployment
from privplate.devices.protocol import DeviceKey
from privplate.edge.alerts import EdgeAlerts, HotlistFeed, Webhook
from privplate.edge.pipeline import EdgePipeline
from privplate.edge.reads import KeySource
from privplate.edge.sources import MotionGate
from privplate.edge.spool import Spool
from privplate.edge.tracking import Tracker
from privplate.edge.uplink import (
    DeviceClient,
    HttpUplink,
    LocalUplink,
    ServerHotlistFeed,
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
    pipeline: EdgePipeline
    spool: Spool
    worker: UplinkWorker
    mode: str


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
    *,
    camera_id: str | None,
    out: TextIO | None = None,
) -> Edge:
    edge = settings.edge
    spool = Spool(settings.path(edge.spool_file))
    stack.callback(spool.close)
    webhook = Webhook(edge.webhook_url) if edge.webhook_url else None
    if webhook is not None:
        stack.callback(webhook.close)
    if edge.server_url:
        if not camera_id:
            raise ConfigError("give --camera ID: the camera this device is registered for")
        client = DeviceClient(
            edge.server_url,
            read_device_key(settings.path(edge.device_key_file)),
            timeout=edge.uplink_timeout_seconds,
        )
        fold = settings.plates.fold_table
        keys: KeySource = ServerKeys(client, spool, fold=fold)
        # Short timeout: the feed is asked from the camera loop.
        feed: HotlistFeed | None = ServerHotlistFeed(
            DeviceClient(edge.server_url, client.key, timeout=5.0)
        )
        uplink: Uplink = HttpUplink(client)
        mode = f"server {edge.server_url}"
    else:
        dep = stack.enter_context(Deployment.open(settings.home, settings=settings, actor="edge"))
        camera_id = pick_camera(dep, camera_id)
        # The domain layer the server uses too: hotlists, alerts, webhooks and the one ingest.
        services = stack.enter_context(Services.open(dep))
        # Deliveries left in the outbox by the last run go out now, not at the next alert.
        services.webhooks.start()
        keys, feed, fold = dep.keyring, LocalHotlistFeed(services), dep.fold
        uplink = LocalUplink(services)
        mode = "single-box"
    alerts = EdgeAlerts(feed, out=out, webhook=webhook)
    pipeline = EdgePipeline(
        reader,
        spool,
        camera_id=camera_id,
        keys=keys,
        fold=fold,
        evidence_key=settings.evidence_public_key_bytes,
        alerts=alerts,
        tracker=Tracker(edge.track_seconds),
        motion=MotionGate(edge.motion_threshold),
        frame_side=edge.evidence_frame_side,
        max_tokens=min(settings.ingest.max_tokens_per_read, 1 + edge.alternates),
    )
    worker = UplinkWorker(
        spool, uplink, batch_reads=edge.uplink_batch_reads, linger=edge.uplink_linger_seconds
    )
    pipeline.on_hit = worker.hurry
    return Edge(pipeline, spool, worker, mode)
