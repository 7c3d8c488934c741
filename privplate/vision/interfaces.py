"""The two stages of recognition behind small interfaces, so a test or a pipeline can swap one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from privplate.vision.types import Detection, ImageArray, SlotProbabilities


@runtime_checkable
class Detector(Protocol):
    """Finds plates in a BGR frame."""

    def detect(self, frame: ImageArray) -> list[Detection]: ...


@runtime_checkable
class Recognizer(Protocol):
    """Reads plate crops (BGR) into per-slot probabilities, all crops in one model call."""

    def recognize(self, crops: Sequence[ImageArray]) -> list[SlotProbabilities]: ...
