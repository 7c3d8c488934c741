"""`privplate edge eval` on a labelled sample of the shared photos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from privplate.cli.main import app
from tests.edge_helpers import ENDTOEND, MODELS_DIR, labelled_rows, needs_models
from tests.privacy import hits_in_bytes

pytestmark = needs_models
REQUIRED = {
    "images",
    "exact_accuracy",
    "detection_recall",
    "char_error_rate",
    "hotlist_recall_best",
    "hotlist_recall_alternates",
    "false_alert_rate",
    "per_region",
}


def _sample(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return labels


def test_eval_reports_figures_and_never_a_plate(tmp_path: Path) -> None:
    rows = labelled_rows("us", 8) + labelled_rows("eu", 4)
    # A label whose photo is corrupt counts as an unreadable image, not a crash.
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rows.append({**rows[0], "filename": str(broken)})
    labels = _sample(tmp_path, rows)
    result = CliRunner().invoke(
        app,
        ["edge", "eval", "--images", str(ENDTOEND), "--labels", str(labels), "--json"],
        env={"PRIVPLATE_HOME": str(tmp_path), "PRIVPLATE_MODELS_DIR": str(MODELS_DIR)},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report.keys() >= REQUIRED
    assert report["images"] == 13
    assert report["unreadable_images"] == 1
    assert set(report["per_region"]) == {"us", "eu"}
    assert report["per_region"]["us"]["images"] == 9
    assert 0.5 <= report["exact_accuracy"] <= 12 / 13
    assert report["hotlist_recall_alternates"] >= report["hotlist_recall_best"]
    assert report["false_alert_rate"] < 0.001
    output = (result.stdout + result.stderr).encode()
    assert hits_in_bytes(output, [r["plate"] for r in rows]) == []


def test_eval_refuses_labels_without_plate_column(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,text\na.jpg,x\n")
    result = CliRunner().invoke(
        app,
        ["edge", "eval", "--images", str(tmp_path), "--labels", str(labels)],
        env={"PRIVPLATE_HOME": str(tmp_path)},
    )
    assert result.exit_code == 78
    assert "filename,plate" in result.output + result.stderr
