"""Shared pieces of the edge and vision tests: the real models and photos from ../shared.

Nothing is downloaded: when the models or photos are absent, the tests that need them skip
with a reason naming PRIVPLATE_MODELS_DIR.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

# A relative PRIVPLATE_MODELS_DIR (the README's `../shared/models`) means from where pytest was
# started; resolve it now, before any test changes the directory or loads settings elsewhere.
MODELS_DIR = Path(
    os.environ.get("PRIVPLATE_MODELS_DIR")
    or Path(__file__).resolve().parents[2] / "shared" / "models"
).resolve()
DATA_DIR = MODELS_DIR.parent / "data"
ENDTOEND = DATA_DIR / "plates_endtoend"
MODEL_FILES = (
    "yolov8n-plate-640.onnx",
    "cct_xs_v1_global.onnx",
    "cct_xs_v1_global_plate_config.yaml",
)


def edge_extra_missing() -> str | None:
    for module in ("cv2", "onnxruntime", "fast_plate_ocr", "numpy"):
        try:
            __import__(module)
        except ModuleNotFoundError:
            return f"{module} is not installed (pip install -e '.[edge]')"
    return None


def models_missing() -> str | None:
    missing = edge_extra_missing()
    if missing:
        return missing
    absent = [f for f in MODEL_FILES if not (MODELS_DIR / f).is_file()]
    if absent:
        return f"shared models {absent} not in {MODELS_DIR}; set PRIVPLATE_MODELS_DIR"
    if not (ENDTOEND / "labels.csv").is_file():
        return f"shared photos not in {ENDTOEND}"
    return None


needs_edge = pytest.mark.skipif(edge_extra_missing() is not None, reason=str(edge_extra_missing()))
needs_models = pytest.mark.skipif(models_missing() is not None, reason=str(models_missing()))


def labelled_rows(region: str | None = None, limit: int | None = None) -> list[dict[str, str]]:
    with (ENDTOEND / "labels.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if region is None or r["region"] == region]
    return rows[:limit] if limit else rows


def edge_settings(home: Path, **edge: object) -> object:
    from privplate.settings import load_settings

    return load_settings(home, models_dir=MODELS_DIR, edge=edge)
