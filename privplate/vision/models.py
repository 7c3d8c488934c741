"""Which model files privplate trusts, where to find them, and the check before loading.

``models/registry.toml`` lists every model privplate knows with the sha256 of each file. A file
is loaded only after its digest matched the registry: a swapped or corrupted detector could
silently miss plates. Files are looked for in this order: an explicit path from the settings,
the models directory (``models_dir`` / ``PRIVPLATE_MODELS_DIR``), the download cache, and last
a download from the model's hub (with a progress bar; never in tests).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from privplate.errors import ConfigError, ModelRejected

ModelKind = Literal["detector", "recognizer"]


@dataclass(frozen=True)
class ModelFile:
    filename: str
    sha256: str
    url: str = ""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: ModelKind
    files: tuple[ModelFile, ...]  # the ONNX file first; a recognizer's plate config second
    layout: str
    licence: str
    hub: str
    card: str


def registry_dir() -> Path:
    """``models/`` of a source checkout, or the copy packaged with the wheel."""
    packaged = Path(__file__).resolve().parent.parent / "_data" / "models"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "models"


def load_registry(path: Path | None = None) -> dict[str, ModelEntry]:
    source = path or registry_dir() / "registry.toml"
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"model registry {source} is unreadable ({type(exc).__name__})") from None
    entries: dict[str, ModelEntry] = {}
    for item in data.get("model", []):
        files = tuple(
            ModelFile(str(f["filename"]), str(f.get("sha256", "")).lower(), str(f.get("url", "")))
            for f in item["files"]
        )
        entries[item["name"]] = ModelEntry(
            name=item["name"],
            kind=item["kind"],
            files=files,
            layout=item.get("layout", ""),
            licence=item.get("licence", ""),
            hub=item.get("hub", ""),
            card=item.get("card", ""),
        )
    return entries


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, expected: ModelFile, *, allow_unregistered: bool) -> Path:
    """Return ``path`` if its digest is the registered one; refuse it otherwise."""
    if allow_unregistered:
        return path
    if not expected.sha256:
        raise ModelRejected(
            f"{path.name} has no sha256 in the model registry yet, so it cannot be verified; "
            "add its digest to models/registry.toml or set edge.allow_unregistered_models = true"
        )
    actual = sha256_of(path)
    if actual != expected.sha256:
        raise ModelRejected(
            f"{path} does not match the registered sha256 of {expected.filename} (the file is "
            "altered, truncated or a different model); replace it with the registered file, or "
            "set edge.allow_unregistered_models = true to load it anyway"
        )
    return path


def _download(url: str, target: Path, expected: ModelFile, *, allow_unregistered: bool) -> None:
    """Fetch ``url`` next to ``target`` and move it into place only once its digest matched."""
    from rich.progress import Progress  # noqa: PLC0415 - only when a download happens

    if not url.startswith("https://"):
        raise ConfigError(f"refusing to download a model over a non-HTTPS URL: {url}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with (
            urllib.request.urlopen(url, timeout=60) as response,  # noqa: S310 - https checked
            partial.open("wb") as out,
            Progress(transient=True) as progress,
        ):
            task = progress.add_task(
                f"downloading {target.name}",
                total=int(response.headers.get("Content-Length", 0)) or None,
            )
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                progress.advance(task, len(block))
        verify(partial, expected, allow_unregistered=allow_unregistered)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigError(
            f"downloading {target.name} failed ({type(exc).__name__}: offline?); put the file in "
            "models_dir (PRIVPLATE_MODELS_DIR) instead"
        ) from None
    except ModelRejected:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "privplate" / "models"


def resolve(
    entry: ModelEntry,
    *,
    explicit: Sequence[Path | None] = (),
    models_dir: Path | None = None,
    allow_download: bool = False,
    allow_unregistered: bool = False,
    setting: str = "edge.detector_path",
) -> tuple[Path, ...]:
    """Verified local paths of every file of ``entry``, downloading them if allowed."""
    found: list[Path] = []
    for index, expected in enumerate(entry.files):
        given = explicit[index] if index < len(explicit) else None
        if given is not None:
            if not given.is_file():
                raise ConfigError(f"{setting} points to {given}, which does not exist")
            found.append(verify(given, expected, allow_unregistered=allow_unregistered))
            continue
        candidates = [d / expected.filename for d in (models_dir, cache_dir()) if d is not None]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            if not (allow_download and expected.url):
                where = f"in {models_dir}" if models_dir else "(no models directory is set)"
                raise ConfigError(
                    f"model file {expected.filename} ({entry.name}) was not found {where} "
                    "and downloads are off; set "
                    f"models_dir (PRIVPLATE_MODELS_DIR) to a folder holding it, give {setting}, "
                    "or set edge.allow_download = true on a machine that is online"
                )
            path = cache_dir() / expected.filename
            _download(expected.url, path, expected, allow_unregistered=allow_unregistered)
        found.append(verify(path, expected, allow_unregistered=allow_unregistered))
    return tuple(found)
