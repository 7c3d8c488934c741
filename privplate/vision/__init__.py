"""Pure plate recognition: frames in, plate readings with per-slot probabilities out.

Nothing here knows about tokens, storage or the network. Needs the ``edge`` extra
(OpenCV, onnxruntime, fast-plate-ocr), imported on first use.
"""

from privplate.vision.interfaces import Detector, Recognizer
from privplate.vision.types import (
    Box,
    Candidate,
    Detection,
    PlateReading,
    SlotProbabilities,
)

__all__ = [
    "Box",
    "Candidate",
    "Detection",
    "Detector",
    "PlateReading",
    "Recognizer",
    "SlotProbabilities",
]
