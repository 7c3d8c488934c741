"""A simulated edge fleet for load and fault runs: many signed devices, each with its own durable
spool and uplink (privplate's own Spool, ServerKeys and UplinkWorker, as `privplate edge run`
uses them), fed with token-only reads at a set rate.

Plates exist only in this process's memory: the fleet tokenizes them with the epoch key each
device fetched (sealed to it) from the server, as an edge does. Hotlisted plates are drawn at
``hit_share`` so the run can check that every hotlisted read raised exactly one alert.
Importable by benchmarks (no pytest at import time).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from privplate.deployment import Deployment
from privplate.devices import DeviceKey, registry
from privplate.edge.reads import EdgeRead
from privplate.edge.spool import Spool, SpooledBatch
from privplate.edge.uplink import DeviceClient, HttpUplink, ServerKeys, UplinkWorker
from privplate.store.ingest import ReadIn, TokenIn
from privplate.tokens.canonical import canonical_plate
from privplate.tokens.plate_token import plate_token

LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
DIGITS = "0123456789"


def random_plate(rng: random.Random) -> str:
    """A plate shape no hotlist plate has (hotlist plates start with a digit)."""
    return "".join(rng.choice(LETTERS) for _ in range(3)) + "".join(
        rng.choice(DIGITS) for _ in range(4)
    )


def hotlist_plates(count: int) -> list[str]:
    return [f"{i:04d}HQ{i % 7}" for i in range(count)]


class TimedUplink(HttpUplink):
    """The device's uplink, timing each batch POST (ingest batch latency as an edge sees it)."""

    def __init__(self, client: DeviceClient, timings: list[float]) -> None:
        super().__init__(client)
        self.timings = timings

    def send(self, batch: SpooledBatch) -> None:
        started = time.perf_counter()
        super().send(batch)
        self.timings.append(time.perf_counter() - started)


@dataclass
class SimDevice:
    device_id: str
    key: DeviceKey
    cameras: list[str]
    spool: Spool
    keys: ServerKeys
    worker: UplinkWorker
    produced: Counter[str] = field(default_factory=Counter)
    hit_reads: list[uuid.UUID] = field(default_factory=list)
    #: read id -> when it was spooled (time.time()), for hotlisted reads only.
    hit_spooled_at: dict[uuid.UUID, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FleetShape:
    devices: int = 200
    cameras_per_device: int = 10
    tokens_per_read: int = 3
    hit_share: float = 0.005
    #: An uplink waits this long when its spool is empty: the devices' batch rhythm.
    idle_poll: float = 2.0
    batch_reads: int = 200
    #: edge.uplink_linger_seconds of every device (0: send whatever is spooled at once).
    linger: float = 0.0


def register_fleet(
    home: Path, shape: FleetShape, prefix: str = "d"
) -> list[tuple[str, DeviceKey, list[str]]]:
    """Cameras and devices in the deployment, as an administrator's CLI would add them."""
    out: list[tuple[str, DeviceKey, list[str]]] = []
    with Deployment.open(home, actor="load-setup") as dep:
        for d in range(shape.devices):
            device_id = f"{prefix}{d:04d}"
            cameras = [f"{device_id}-c{c:02d}" for c in range(shape.cameras_per_device)]
            for camera in cameras:
                dep.add_camera(camera)
            key = DeviceKey.generate(device_id)
            registry.register_device(
                db=dep.db,
                audit=dep.audit,
                actor="load-setup",
                device_id=device_id,
                public_key=key.public_key,
                cameras=cameras,
            )
            out.append((device_id, key, cameras))
    return out


class Fleet:
    """Devices spooling reads and uplinking them to ``urls`` (device i to urls[i % n])."""

    def __init__(
        self,
        devices: Sequence[tuple[str, DeviceKey, list[str]]],
        urls: Sequence[str],
        spools: Path,
        shape: FleetShape,
        *,
        hot: Sequence[str],
        seed: int = 7,
        timeout: float = 10.0,
    ) -> None:
        self.shape = shape
        self.rng = random.Random(seed)
        self.hot = list(hot)
        self.devices: list[SimDevice] = []
        #: Seconds per acknowledged batch POST, all devices (list.append is atomic).
        self.batch_seconds: list[float] = []
        spools.mkdir(parents=True, exist_ok=True)
        for i, (device_id, key, cameras) in enumerate(devices):
            client = DeviceClient(urls[i % len(urls)], key, timeout=timeout)
            spool = Spool(spools / f"{device_id}.db")
            worker = UplinkWorker(
                spool,
                TimedUplink(client, self.batch_seconds),
                batch_reads=shape.batch_reads,
                idle_poll=shape.idle_poll,
                linger=shape.linger,
                max_delay=10.0,
            )
            self.devices.append(
                SimDevice(device_id, key, cameras, spool, ServerKeys(client, spool), worker)
            )
        self._stop = threading.Event()
        self._producer: threading.Thread | None = None
        self.rate = 0.0
        self.errors: Counter[str] = Counter()

    # -- reads -------------------------------------------------------------------------------

    def _read(self, device: SimDevice, now: datetime) -> EdgeRead:
        camera = self.rng.choice(device.cameras)
        hit = self.rng.random() < self.shape.hit_share
        plate = self.rng.choice(self.hot) if hit else random_plate(self.rng)
        epoch = device.keys.current_key(now)
        texts = [plate] + [random_plate(self.rng) for _ in range(self.shape.tokens_per_read - 1)]
        tokens = [
            TokenIn(plate_token(epoch.key, canonical_plate(t)), is_alternate=i > 0)
            for i, t in enumerate(texts)
        ]
        read = ReadIn(
            read_id=uuid.uuid4(),
            camera_id=camera,
            observed_at=now,
            epoch_id=epoch.epoch_id,
            tokens=tokens,
            confidence=round(self.rng.uniform(0.6, 0.99), 4),
        )
        if hit:
            device.hit_reads.append(read.read_id)
            device.hit_spooled_at[read.read_id] = time.time()
        return EdgeRead(read, None)

    def spool_one(self, device: SimDevice) -> None:
        item = self._read(device, datetime.now(UTC))
        device.spool.put(item)
        device.produced[item.read.camera_id] += 1
        if item.read.read_id in device.hit_spooled_at:
            device.worker.hurry()  # as the edge pipeline does for a read that alerted

    def _produce(self) -> None:
        # Reads spread over the devices round-robin, paced to ``rate`` per second in ticks.
        tick = 0.05
        owed = 0.0
        index = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            owed += self.rate * tick
            while owed >= 1:
                device = self.devices[index % len(self.devices)]
                index += 1
                try:
                    self.spool_one(device)
                except Exception as exc:  # a fault test's key fetch may fail: count it
                    self.errors[type(exc).__name__] += 1
                owed -= 1
            next_at += tick
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    # -- running -----------------------------------------------------------------------------

    def start(self, rate: float) -> None:
        for device in self.devices:
            device.keys.current_key()  # each device fetches its sealed epoch key once
            device.worker.start()
        self.rate = rate
        self._producer = threading.Thread(target=self._produce, name="fleet", daemon=True)
        self._producer.start()

    def stop_producing(self) -> None:
        self._stop.set()
        if self._producer is not None:
            self._producer.join()

    def depth(self) -> int:
        return sum(d.spool.depth() for d in self.devices)

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.depth() == 0:
                return True
            time.sleep(0.5)
        return self.depth() == 0

    def close(self) -> None:
        self.stop_producing()
        for device in self.devices:
            device.worker.stop()
            device.spool.close()

    # -- what was sent -----------------------------------------------------------------------

    def produced(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for device in self.devices:
            total.update(device.produced)
        return total

    def hit_reads(self) -> set[uuid.UUID]:
        return {r for d in self.devices for r in d.hit_reads}

    def spooled_at(self) -> dict[uuid.UUID, float]:
        return {r: t for d in self.devices for r, t in d.hit_spooled_at.items()}

    def sent_reads(self) -> int:
        return sum(d.worker.sent_reads for d in self.devices)

    def failures(self) -> int:
        return sum(d.worker.failures for d in self.devices)
