"""A few simulated devices in a process of their own, run inside another host (tests/hosts.py
``peer``) so the load bed can cut their network while the rest of the fleet keeps sending.

    python -m tests.remote_fleet CONFIG.json

CONFIG holds the server URL, the devices (id, key seed, cameras), the spool folder, the rate,
the fleet shape and the hotlisted plates. The process answers one line per command on stdin:
``depth`` (reads spooled, not yet acknowledged) and ``stop`` (stop producing, drain, then one
JSON line of what was produced per camera and which reads were hotlisted; then it exits).
Plates stay in this process's memory, as in tests/fleet.py.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from privplate.devices import DeviceKey
from tests.fleet import Fleet, FleetShape


def _say(line: object) -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    devices = [
        (device_id, DeviceKey(device_id, bytes.fromhex(seed)), cameras)
        for device_id, seed, cameras in config["devices"]
    ]
    fleet = Fleet(
        devices,
        [config["url"]],
        Path(config["spools"]),
        FleetShape(**config["shape"]),
        hot=config["hot"],
        seed=int(config.get("seed", 11)),
        timeout=float(config.get("timeout", 10.0)),
    )
    fleet.start(float(config["rate"]))
    _say("ready")
    for line in sys.stdin:
        command = line.strip()
        if command == "depth":
            _say(fleet.depth())
        elif command == "stop":
            fleet.stop_producing()
            started = time.monotonic()
            drained = fleet.drain(float(config.get("drain_seconds", 300)))
            result = {
                "produced": dict(fleet.produced()),
                "hits": sorted(str(r) for r in fleet.hit_reads()),
                "drained": drained,
                "drain_seconds": time.monotonic() - started,
                "failures": fleet.failures(),
                "errors": dict(fleet.errors),
            }
            fleet.close()
            _say(json.dumps(result))
            return 0
    fleet.close()
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
