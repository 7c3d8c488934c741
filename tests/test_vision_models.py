"""Model registry: files are verified by sha256 before loading; missing ones say what to set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from privplate.errors import ConfigError, ModelRejected
from privplate.vision.models import load_registry, resolve, sha256_of
from tests.edge_helpers import MODELS_DIR, needs_models


def test_registry_lists_every_shared_model_with_a_card() -> None:
    from typing import get_args

    from privplate.settings import DetectorName, RecognizerName

    registry = load_registry()
    assert set(registry) == set(get_args(DetectorName)) | set(get_args(RecognizerName))
    assert {n for n, e in registry.items() if e.kind == "detector"} == set(get_args(DetectorName))
    assert {"yolov8n-plate-640", "yolov8n-plate-384", "cct-xs-v1-global-model"} <= set(registry)
    assert {e.layout for e in registry.values()} >= {"yolov8", "end2end"}
    root = Path(__file__).resolve().parents[1] / "models"
    for entry in registry.values():
        assert (root / entry.card).is_file(), entry.card
        assert entry.licence


@needs_models
def test_shared_models_match_the_registry() -> None:
    for entry in load_registry().values():
        for item in entry.files:
            if (MODELS_DIR / item.filename).is_file():
                assert sha256_of(MODELS_DIR / item.filename) == item.sha256


@needs_models
def test_altered_model_is_refused_unless_allowed(tmp_path: Path) -> None:
    entry = load_registry()["yolov8n-plate-384"]
    altered = tmp_path / "yolov8n-plate-384.onnx"
    shutil.copyfile(MODELS_DIR / altered.name, altered)
    with altered.open("r+b") as handle:
        handle.seek(-16, 2)
        byte = handle.read(1)
        handle.seek(-16, 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelRejected, match="allow_unregistered_models"):
        resolve(entry, models_dir=tmp_path)
    with pytest.raises(ModelRejected):
        resolve(entry, explicit=[altered])
    assert resolve(entry, models_dir=tmp_path, allow_unregistered=True) == (altered,)
    assert resolve(entry, models_dir=MODELS_DIR) == (MODELS_DIR / altered.name,)


def test_unverifiable_hub_model_is_refused(tmp_path: Path) -> None:
    entry = load_registry()["yolo-v9-t-640-license-plate-end2end"]
    fake_download = tmp_path / entry.files[0].filename
    fake_download.write_bytes(b"not a model")
    with pytest.raises(ModelRejected, match="no sha256"):
        resolve(entry, models_dir=tmp_path)


def test_missing_model_offline_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    entry = load_registry()["cct-xs-v1-global-model"]
    with pytest.raises(ConfigError, match="PRIVPLATE_MODELS_DIR") as caught:
        resolve(entry, models_dir=tmp_path, allow_download=False)
    assert "allow_download" in str(caught.value)


def test_failed_download_says_what_to_do_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    registry = tmp_path / "registry.toml"
    registry.write_text(
        '[[model]]\nname = "x"\nkind = "detector"\nfiles = [{ filename = "x.onnx", sha256 = "00", '
        f'url = "https://127.0.0.1:{port}/x.onnx" }}]\n'
    )
    entry = load_registry(registry)["x"]
    with pytest.raises(ConfigError, match="offline"):
        resolve(entry, models_dir=tmp_path / "models", allow_download=True)
    assert not list((tmp_path / "cache").rglob("x.onnx*"))
    entry_http = load_registry(registry)["x"]
    object.__setattr__(entry_http.files[0], "url", f"http://127.0.0.1:{port}/x.onnx")
    with pytest.raises(ConfigError, match="non-HTTPS"):
        resolve(entry_http, models_dir=tmp_path / "models", allow_download=True)
