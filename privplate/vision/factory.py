"""Build a verified detector, recognizer and reader from the deployment's settings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from privplate.errors import ConfigError
from privplate.settings import EdgeSettings, Settings
from privplate.vision.crops import CropVariant
from privplate.vision.detector import YoloPlateDetector
from privplate.vision.formats import (
    DEFAULT_WEIGHT,
    FormatSet,
    PlateFormat,
    inline_formats,
    load_format_file,
)
from privplate.vision.models import load_registry, registry_dir, resolve
from privplate.vision.priors import FormatPrior, load_prior
from privplate.vision.reader import PlateReader, ReaderOptions
from privplate.vision.recognizer import FastPlateRecognizer


def models_dir(settings: Settings) -> Path | None:
    if settings.models_dir is not None:
        return settings.path(settings.models_dir)
    env = os.environ.get("PRIVPLATE_MODELS_DIR")
    return Path(env) if env else None


def load_format_prior(name: str) -> FormatPrior | None:
    if not name:
        return None
    path = registry_dir() / "priors" / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in (registry_dir() / "priors").glob("*.toml"))
        raise ConfigError(f'edge.format_prior = {name!r} is unknown; use one of {known} or ""')
    return load_prior(path)


def format_names() -> list[str]:
    """The plate format files shipped in models/formats."""
    return sorted(p.stem for p in (registry_dir() / "formats").glob("*.toml"))


def load_plate_formats(
    names: Sequence[str], patterns: Sequence[str] = (), *, weight: float = DEFAULT_WEIGHT
) -> FormatSet | None:
    """The formats of ``edge.plate_formats`` (file names; "us-*" for every "us-" file) and
    ``edge.plate_patterns``; None when neither declares any."""
    known = format_names()
    formats: list[PlateFormat] = []
    for name in dict.fromkeys(names):
        if name.endswith("*"):
            chosen = [k for k in known if k.startswith(name[:-1])]
        else:
            chosen = [name] if name in known else []
        if not chosen:
            raise ConfigError(
                f"edge.plate_formats: {name!r} names no file in models/formats; use some of "
                f"{known} (a name ending in * takes every file it begins)"
            )
        for stem in chosen:
            formats.extend(load_format_file(registry_dir() / "formats" / f"{stem}.toml"))
    formats.extend(inline_formats(list(patterns)))
    return FormatSet(tuple(formats), weight) if formats else None


def _in(base: Path, value: Path) -> Path:
    return value if value.is_absolute() else base / value


def build_detector(settings: Settings, edge: EdgeSettings | None = None) -> YoloPlateDetector:
    return _detector(edge or settings.edge, models_dir(settings), settings.home)


def _detector(edge: EdgeSettings, models: Path | None, base: Path) -> YoloPlateDetector:
    registry = load_registry()
    entry = registry.get(edge.detector)
    if entry is None or entry.kind != "detector":
        names = sorted(n for n, e in registry.items() if e.kind == "detector")
        raise ConfigError(
            f"edge.detector = {edge.detector!r} is not a known detector; use one of {names}"
        )
    explicit = [_in(base, edge.detector_path)] if edge.detector_path else []
    (path,) = resolve(
        entry,
        explicit=explicit,
        models_dir=models,
        allow_download=edge.allow_download,
        allow_unregistered=edge.allow_unregistered_models,
        setting="edge.detector_path",
    )
    layout = entry.layout if entry.layout in ("yolov8", "end2end") else None
    return YoloPlateDetector(
        path,
        confidence=edge.detector_confidence,
        iou=edge.nms_iou,
        threads=edge.threads,
        layout=layout,  # type: ignore[arg-type]
        rect=edge.rect_inference,
    )


def build_recognizer(settings: Settings, edge: EdgeSettings | None = None) -> FastPlateRecognizer:
    return _recognizer(edge or settings.edge, models_dir(settings), settings.home)


def _recognizer(edge: EdgeSettings, models: Path | None, base: Path) -> FastPlateRecognizer:
    registry = load_registry()
    entry = registry.get(edge.recognizer)
    if entry is None or entry.kind != "recognizer":
        names = sorted(n for n, e in registry.items() if e.kind == "recognizer")
        raise ConfigError(
            f"edge.recognizer = {edge.recognizer!r} is not a known recognizer; use one of {names}"
        )
    explicit = [
        _in(base, p) if p is not None else None
        for p in (edge.recognizer_path, edge.recognizer_config_path)
    ]
    model, config = resolve(
        entry,
        explicit=explicit,
        models_dir=models,
        allow_download=edge.allow_download,
        allow_unregistered=edge.allow_unregistered_models,
        setting="edge.recognizer_path / edge.recognizer_config_path",
    )
    return FastPlateRecognizer(model, config, threads=edge.threads)


def reader_options(edge: EdgeSettings) -> ReaderOptions:
    return ReaderOptions(
        variants=tuple(CropVariant(v) for v in edge.crop_variants),
        vote_below=edge.vote_below if edge.vote_below < 1.0 else None,
        prior=load_format_prior(edge.format_prior),
        formats=load_plate_formats(
            edge.plate_formats, edge.plate_patterns, weight=edge.format_weight
        ),
        alternates=edge.alternates,
        alternate_ratio=edge.alternate_ratio,
        min_ocr_confidence=edge.min_ocr_confidence,
        refine_below=edge.refine_below if edge.refine_below > 0 else None,
        refine_side=edge.refine_side,
    )


def build_reader(settings: Settings, edge: EdgeSettings | None = None) -> PlateReader:
    edge = edge or settings.edge
    return PlateReader(
        build_detector(settings, edge), build_recognizer(settings, edge), reader_options(edge)
    )


def load_reader(
    detector: str = "yolov8n-plate-640",
    recognizer: str = "cct-xs-v1-global-model",
    *,
    models_dir: Path | str | None = None,
    allow_download: bool = False,
    **options: Any,
) -> PlateReader:
    """A verified plate reader from registry model names, without a deployment or its settings.

    ``models_dir`` is a folder holding the registry's model files (else ``PRIVPLATE_MODELS_DIR``,
    the download cache, and with ``allow_download`` the models' hubs). Other keyword arguments
    are reading options of the ``[edge]`` settings section (``threads``, ``alternates``,
    ``format_prior``, ``detector_confidence`` ...); a wrong name or value is a ConfigError.

    >>> reader = load_reader(models_dir="../shared/models")  # doctest: +SKIP
    >>> [r.best.text for r in reader.read([frame])[0]]  # doctest: +SKIP
    """
    try:
        edge = EdgeSettings(
            detector=detector,
            recognizer=recognizer,
            allow_download=allow_download,
            **options,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"reader options: {problems}") from None
    env = os.environ.get("PRIVPLATE_MODELS_DIR")
    folder = Path(models_dir) if models_dir is not None else Path(env) if env else None
    base = Path.cwd()
    return PlateReader(
        _detector(edge, folder, base), _recognizer(edge, folder, base), reader_options(edge)
    )


def with_options(reader: PlateReader, **changes: object) -> PlateReader:
    """The same models under other reading options (ablations share the loaded sessions)."""
    return PlateReader(reader.detector, reader.recognizer, replace(reader.options, **changes))  # type: ignore[arg-type]
