"""`edge.toml`: the cameras one `privplate edge run --config edge.toml` reads in one process.

::

    [[sources]]
    camera = "gate-1"                 # a registered camera id
    source = "rtsp://cam1/stream"     # image, folder, video file, rtsp:// / http:// URL
    max_fps = 5                       # frames per second looked at (0: every frame)
    motion = true                     # skip frames without motion (frame differencing)
    motion_threshold = 0.002          # share of (downscaled, grey) pixels that must change
    roi = { x = 0.0, y = 0.4, w = 1.0, h = 0.6 }   # fractions of the frame

A region of interest is given in fractions of the frame (0..1), not pixels: the same file
stays right when a camera's resolution changes. Only the region is given to the detector and
the motion gate; plate boxes are mapped back to the full frame. Relative paths are relative to
the folder of the edge.toml. Options left out take the deployment's ``[edge]`` settings.

The single-camera flags (``--source SRC --camera ID``) become a one-source config of the same
type, so both run the same code.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from privplate.errors import ConfigError
from privplate.settings import EdgeSettings

_URL_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://")


class Roi(BaseModel):
    """A region of interest in fractions of the frame: left, top, width and height."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: float = Field(default=0.0, ge=0.0, lt=1.0)
    y: float = Field(default=0.0, ge=0.0, lt=1.0)
    w: float = Field(default=1.0, gt=0.0, le=1.0)
    h: float = Field(default=1.0, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _inside(self) -> Roi:
        if self.x + self.w > 1.0 + 1e-9:
            raise ValueError("x + w must be at most 1 (the region must lie inside the frame)")
        if self.y + self.h > 1.0 + 1e-9:
            raise ValueError("y + h must be at most 1 (the region must lie inside the frame)")
        return self

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the region in a frame of ``width`` x ``height``, at least 1 px."""
        x0 = min(width - 1, round(self.x * width))
        y0 = min(height - 1, round(self.y * height))
        x1 = max(x0 + 1, min(width, round((self.x + self.w) * width)))
        y1 = max(y0 + 1, min(height, round((self.y + self.h) * height)))
        return x0, y0, x1, y1

    @property
    def whole(self) -> bool:
        return self.x == 0 and self.y == 0 and self.w == 1 and self.h == 1


class SourceConfig(BaseModel):
    """One camera: where its frames come from and how they are looked at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Registered camera id. Only a one-source run from flags may leave it out (single-box
    #: with one active camera picks that one).
    camera: str | None = Field(default=None, min_length=1, max_length=128)
    source: str = Field(min_length=1)
    #: Frames per second looked at; None: the deployment's edge.max_fps.
    max_fps: float | None = Field(default=None, ge=0.0, le=240.0)
    motion: bool = True
    #: None: the deployment's edge.motion_threshold.
    motion_threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    roi: Roi | None = None

    def fps(self, edge: EdgeSettings) -> float:
        return edge.max_fps if self.max_fps is None else self.max_fps

    def gate_threshold(self, edge: EdgeSettings) -> float:
        """The motion gate's threshold; 0 turns the gate off."""
        if not self.motion:
            return 0.0
        return edge.motion_threshold if self.motion_threshold is None else self.motion_threshold


class EdgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[SourceConfig] = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_source_per_camera(self) -> EdgeConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.camera is not None and source.camera in seen:
                raise ValueError(
                    f"camera {source.camera!r} is given twice; one source per camera "
                    "(its tracker and its resume point are per camera)"
                )
            if source.camera is not None:
                seen.add(source.camera)
        return self

    @classmethod
    def single(cls, source: str, camera: str | None) -> EdgeConfig:
        """What ``--source SRC [--camera ID]`` means: a one-source config."""
        return cls(sources=[SourceConfig(camera=camera, source=source)])


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _resolve(spec: str, base: Path) -> str:
    if spec.startswith(_URL_PREFIXES) or spec.isdigit() or Path(spec).is_absolute():
        return spec
    return str(base / spec)


def load_edge_config(path: Path) -> EdgeConfig:
    """Read and check ``path``; a ConfigError names the file, the source and the field.

    Messages never repeat a value (a source URL may carry a camera's password)."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        config = EdgeConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
    missing = [i for i, s in enumerate(config.sources) if s.camera is None]
    if missing:
        raise ConfigError(f"{path}: sources[{missing[0]}].camera: Field required")
    base = path.resolve().parent
    return EdgeConfig(
        sources=[s.model_copy(update={"source": _resolve(s.source, base)}) for s in config.sources]
    )
