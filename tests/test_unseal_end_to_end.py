"""End to end: an edge seals the evidence of a real photo for a read, an investigator asks to
unseal it, two compliance officers approve from the CLI with their own share files, and the
requester fetches an image that matches the original plate crop."""

from __future__ import annotations

import csv
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from privplate.api import create_app
from privplate.ceremony.ceremony import hold_ceremony
from privplate.cli.main import app as cli
from privplate.deployment import Deployment
from privplate.devices import DeviceKey, IngestBatch, registry
from privplate.identity import accounts
from privplate.identity.roles import Role
from privplate.store import EvidenceIn
from tests import factories
from tests.test_api_alerts import _free_port

cv2 = pytest.importorskip("cv2")
np = pytest.importorskip("numpy")
DATA = Path(
    os.environ.get("PRIVPLATE_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)
LABELS = DATA / "plates_endtoend" / "labels.csv"
PASSWORD = "a long account password"
runner = CliRunner()


@pytest.fixture
def live(home: Path) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(home, run_scheduler=False), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _cli(*args: str, stdin: str) -> str:
    result = runner.invoke(cli, list(args), input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.skipif(not LABELS.exists(), reason="needs ../shared/data (real plate photos)")
def test_edge_seal_request_two_officer_approval_and_fetch(
    home: Path, tmp_path: Path, live: str
) -> None:
    from privplate.edge.evidence import seal_evidence
    from privplate.vision.crops import crop
    from privplate.vision.types import Box

    with LABELS.open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    frame = cv2.imread(str(DATA / "plates_endtoend" / row["filename"]))
    x, y, w, h = (float(row[k]) for k in ("x", "y", "w", "h"))
    box = Box(x, y, x + w, y + h)

    with Deployment.open(home, actor="test") as dep:
        dep.add_camera("gate-1")
        for name, role in [
            ("ivy", Role.INVESTIGATOR),
            ("cleo", Role.COMPLIANCE),
            ("omar", Role.COMPLIANCE),
            ("pat", Role.COMPLIANCE),
        ]:
            accounts.create_user(
                db=dep.db, audit=dep.audit, actor="test", name=name, role=role, password=PASSWORD
            )
        ceremony = hold_ceremony(
            dep,
            officers=[(n, f"share passphrase of {n}") for n in ("cleo", "omar", "pat")],
            threshold=2,
            out_dir=tmp_path / "shares",
            strength="interactive",
        )
        device = DeviceKey.generate("edge-1")
        registry.register_device(
            db=dep.db,
            audit=dep.audit,
            actor="test",
            device_id="edge-1",
            public_key=device.public_key,
            cameras=["gate-1"],
        )
        # The edge: seal the crop and frame to X, tokenize the plate, send a signed batch.
        evidence_id, sealed = seal_evidence(frame, box, ceremony.public_key)
        read = factories.read(dep, row["plate"], camera_id="gate-1", evidence_id=evidence_id)
        observed = read.observed_at
    batch = IngestBatch.from_store(
        uuid.uuid4(), [read], [EvidenceIn(evidence_id, "gate-1", observed, sealed)]
    )
    body = json.dumps(batch.model_dump(mode="json")).encode()
    answer = httpx.post(
        f"{live}/ingest",
        content=body,
        headers={
            **device.sign_request("POST", "/ingest", body),
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text

    out = _cli(
        "unseal",
        "request",
        str(evidence_id),
        "--case",
        "SPD-2026-9",
        "--why",
        "Hit-and-run; the image identifies the vehicle for the report.",
        "--user",
        "ivy",
        "--server",
        live,
        "--secrets-stdin",
        stdin=f"{PASSWORD}\n",
    )
    request_id = out.split("unseal request ")[1].split()[0]
    for officer in ("omar", "cleo"):
        out = _cli(
            "officer",
            "approve",
            request_id,
            "--share",
            str(ceremony.files[officer]),
            "--user",
            officer,
            "--server",
            live,
            "--yes",
            "--secrets-stdin",
            stdin=f"{PASSWORD}\nshare passphrase of {officer}\n",
        )
    assert "released" in out
    target = tmp_path / "fetched" / "plate.jpg"
    target.parent.mkdir()
    _cli(
        "unseal",
        "fetch",
        request_id,
        "--out",
        str(target),
        "--user",
        "ivy",
        "--server",
        live,
        "--secrets-stdin",
        stdin=f"{PASSWORD}\n",
    )
    fetched = cv2.imdecode(np.frombuffer(target.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    original = crop(frame, box, 0.1, 0.2)
    assert fetched.shape == original.shape
    assert float(np.abs(fetched.astype(int) - original.astype(int)).mean()) < 4.0  # JPEG only
    assert target.with_name("plate.frame.jpg").exists()
