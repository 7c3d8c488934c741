"""Labelled photos for `privplate edge eval`: ``filename,plate[,region,x,y,w,h]``.

Plates stay in memory; nothing here prints, logs or writes one.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from privplate.errors import ConfigError
from privplate.vision.types import Box

_NOT_PLATE = re.compile("[^A-Z0-9]")


def compare_form(text: str) -> str:
    """How plates are compared in evaluation: upper case, only A-Z and 0-9."""
    return _NOT_PLATE.sub("", text.upper())


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    plate: str = field(repr=False)
    region: str = ""
    box: Box | None = None


def load_labels(labels: Path, images: Path) -> list[LabelledImage]:
    try:
        with labels.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = set(reader.fieldnames or ())
            if not {"filename", "plate"} <= fields:
                raise ConfigError(f"{labels} needs at least the columns filename,plate")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read labels {labels} ({type(exc).__name__})") from None
    has_box = {"x", "y", "w", "h"} <= fields
    out: list[LabelledImage] = []
    for number, row in enumerate(rows, start=2):
        box = None
        if has_box and all((row.get(k) or "").strip() for k in "xywh"):
            try:
                x, y, w, h = (float(row[k]) for k in "xywh")
            except ValueError:
                raise ConfigError(f"{labels} line {number}: x,y,w,h must be numbers") from None
            box = Box(x, y, x + w, y + h)
        plate = compare_form(row["plate"] or "")
        if not plate:
            raise ConfigError(f"{labels} line {number}: the plate column is empty")
        out.append(
            LabelledImage(images / row["filename"], plate, (row.get("region") or "").strip(), box)
        )
    return out
