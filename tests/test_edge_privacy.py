"""After the edge ran, its spool, logs and temporary directory hold no plate text, and the
evidence it sealed opens (with the secret) to the two JPEGs it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from privplate.deployment import Deployment
from privplate.sealing import generate_keypair, open_sealed
from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, needs_models
from tests.privacy import dump_database, hits_in_bytes, hits_in_files

pytestmark = needs_models


def _photos(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for row in rows:
        (folder / Path(row["filename"]).name).symlink_to(ENDTOEND / row["filename"])
    return folder


def test_spool_and_evidence_hold_tokens_and_ciphertext_only(
    tmp_path: Path, dep: Deployment
) -> None:
    import cv2
    import numpy as np

    from privplate.edge.evidence import unpack
    from privplate.edge.pipeline import EdgePipeline
    from privplate.edge.sources import ImageSource
    from privplate.edge.spool import Spool
    from privplate.edge.uplink import LocalUplink, UplinkWorker
    from privplate.services import Services
    from privplate.settings import load_settings
    from privplate.vision.factory import build_reader

    rows = labelled_rows("us", 5)
    plates = [r["plate"] for r in rows]
    secret, public = generate_keypair()
    reader = build_reader(load_settings(Path("/nonexistent-privplate-home"), models_dir=MODELS_DIR))
    dep.add_camera("gate-1")
    spool = Spool(tmp_path / "edge" / "spool.db")
    pipeline = EdgePipeline(
        reader, spool, camera_id="gate-1", keys=dep.keyring, evidence_key=public
    )
    stats = pipeline.run(ImageSource(_photos(tmp_path, rows)))
    assert stats.reads >= 4 and spool.depth() == stats.reads
    spool_files = list((tmp_path / "edge").iterdir())
    assert hits_in_files(spool_files, plates) == {}  # full spool: tokens and sealed bytes
    # Evidence opens to a plate crop and a downscaled frame.
    batch = spool.next_batch(100)
    assert batch is not None
    from privplate.devices.batches import IngestBatch

    _, evidence = IngestBatch.model_validate_json(batch.body).to_store()
    assert len(evidence) == stats.reads
    crop, frame = unpack(
        open_sealed(evidence[0].sealed, secret, evidence_id=evidence[0].evidence_id)
    )
    crop_image = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)
    frame_image = cv2.imdecode(np.frombuffer(frame, np.uint8), cv2.IMREAD_COLOR)
    assert crop_image is not None and frame_image is not None
    assert max(frame_image.shape[:2]) <= 640 and crop_image.shape[1] < frame_image.shape[1]
    # Drained into the store: the spool empties and neither it nor the database has text.
    worker = UplinkWorker(spool, LocalUplink(Services(dep)))
    while worker.step():
        pass
    assert spool.depth() == 0
    spool.close()
    assert hits_in_files(spool_files, plates) == {}
    assert hits_in_bytes(dump_database(dep.settings.resolved_database_url), plates) == []


def test_edge_run_logs_and_temp_dir_hold_no_plate(tmp_path: Path, home: Path) -> None:
    rows = labelled_rows("eu", 4) + labelled_rows("us", 4)
    plates = [r["plate"] for r in rows]
    _, public = generate_keypair()
    with Deployment.open(home) as dep:
        dep.add_camera("gate-1")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **os.environ,
        "PRIVPLATE_MODELS_DIR": str(MODELS_DIR),
        "PRIVPLATE_EVIDENCE_PUBLIC_KEY": public.hex(),
        "TMPDIR": str(temp),
    }
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("privplate")),
            "edge",
            "run",
            "--verbose",
            "--no-display",
            "--source",
            str(_photos(tmp_path, rows)),
            "--dir",
            str(home),
        ],
        env=env,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert b"8 frames" in result.stderr, result.stderr.decode()[-2000:]
    assert hits_in_bytes(result.stdout + result.stderr, plates) == []
    leftovers = [p for p in temp.rglob("*") if p.is_file()]
    assert hits_in_files(leftovers, plates) == {}
    spool_dir = home / "edge"
    assert hits_in_files(spool_dir.iterdir(), plates) == {}
    with Deployment.open(home) as dep:
        assert hits_in_bytes(dump_database(dep.settings.resolved_database_url), plates) == []
