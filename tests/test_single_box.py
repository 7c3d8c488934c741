"""Single-box mode, as an HOA runs it: one machine reads its camera and keeps its own store.

A hotlist hit seen by the edge must become a server alert exactly as one from a remote edge
would: a row that ``GET /alerts`` lists, an ``alerts.raised`` audit entry, a signed webhook
delivery and a count in the transparency report. Nothing on the box names the plate.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from privplate.alerts import verify_body
from privplate.cli.main import app as cli
from privplate.deployment import Deployment
from privplate.services import Services
from tests.api_support import open_api
from tests.edge_helpers import ENDTOEND, MODELS_DIR, needs_models
from tests.privacy import dump_database, hits_in_bytes, hits_in_files

pytestmark = needs_models
PHOTOS = 6  # the hotlisted car and five others


class _Receiver(BaseHTTPRequestHandler):
    got: queue.Queue[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.got.put((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _eu_rows() -> list[dict[str, str]]:
    import csv

    with (ENDTOEND / "labels.csv").open(encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle) if r["region"] == "eu"]


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_hotlist_hit_on_one_box_is_a_server_alert_everywhere(home: Path, tmp_path: Path) -> None:
    rows = _eu_rows()[:PHOTOS]
    plates = [r["plate"] for r in _eu_rows()]
    photos = tmp_path / "photos"
    photos.mkdir()
    for row in rows:
        shutil.copy(ENDTOEND / row["filename"], photos / Path(row["filename"]).name)

    # A webhook receiver on this machine, registered as an admin would.
    got: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
    handler = type("Receiver", (_Receiver,), {"got": got})
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with Deployment.open(home) as dep, Services(dep) as services:
        _, secret = services.webhooks.create(
            actor="admin", url=f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        )

    # The README's steps: a camera, a hotlist, one labelled plate from the label file.
    where = ["--dir", str(home)]
    _invoke("cameras", "add", "gate-1", *where)
    _invoke("hotlist", "create", "stolen-cars", "--source", "stolen-vehicle", *where)
    imported = _invoke(
        "hotlist", "import", str(ENDTOEND / "labels.csv"), "--list", "stolen-cars",
        "--where", "region=eu", "--limit", "1", "--reason", "reported stolen",
        "--case", "HOA-7", *where,
    )  # fmt: skip
    assert "1 entries added" in imported

    log_file = tmp_path / "edge.log"
    env = {**os.environ, "PRIVPLATE_MODELS_DIR": str(MODELS_DIR)}
    run = subprocess.run(
        [sys.executable, "-m", "privplate.cli.main", "edge", "run", "--source", str(photos),
         "--camera", "gate-1", "--verbose", "--dir", str(home)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    log_file.write_text(run.stdout + run.stderr, encoding="utf-8")
    assert run.returncode == 0, run.stderr[-2000:]
    edge_alerts = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [a["hotlists"] for a in edge_alerts] == [["stolen-cars"]]
    assert "1 alert;" in run.stderr

    # The webhook: one delivery, signed with the secret shown at registration.
    headers, body = got.get(timeout=30)
    receiver.shutdown()
    assert got.empty()
    assert verify_body(
        bytes.fromhex(secret),
        headers["X-Privplate-Timestamp"],
        body,
        headers["X-Privplate-Signature"],
    )
    delivered = json.loads(body)["alert"]
    assert delivered["hotlist"] == "stolen-cars" and delivered["camera_id"] == "gate-1"
    assert delivered["read_id"] == edge_alerts[0]["read_id"]

    # GET /alerts, as an operator of the server on the same deployment.
    for api in open_api(home, add_camera=False):
        from privplate.identity.roles import Role

        answer = api.call(Role.OPERATOR, "GET", "/alerts")
        assert answer.status_code == 200
        listed = answer.json()
        assert [(a["hotlist"], a["camera_id"], a["case_number"]) for a in listed] == [
            ("stolen-cars", "gate-1", "HOA-7")
        ]
        raised = list(api.dep.audit.entries(action="alerts.raised"))
        assert len(raised) == 1

    # The transparency report counts it.
    report = json.loads(_invoke("report", "--json", *where))
    assert report["alerts"]["total"] == 1
    assert report["alerts"]["by_camera"] == {"gate-1": 1}
    assert _invoke("alerts", "list", *where).count("hotlist stolen-cars") == 1

    # No plate on the box: database, spool, logs, outputs, webhook body.
    with Deployment.open(home) as dep:
        assert hits_in_bytes(dump_database(dep.settings.resolved_database_url), plates) == []
    assert hits_in_files([p for p in home.rglob("*") if p.is_file()], plates) == {}
    assert hits_in_files([log_file], plates) == {}
    assert hits_in_bytes(body, plates) == []
