"""fast-plate-ocr on onnxruntime, keeping the whole per-slot probability table.

``LicensePlateRecognizer.run`` decodes to the argmax text and keeps only the winning
probabilities; alternates need every symbol's probability, so we prepare the crops the way its
plate config says and call its session directly, one batch for every crop we are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from privplate.errors import ConfigError
from privplate.vision._deps import cv2_module, onnxruntime_module, session_options
from privplate.vision.types import ImageArray, SlotProbabilities


def _fast_plate_ocr() -> tuple[type, object]:
    onnxruntime_module()  # fails with the extra's name first
    try:
        from fast_plate_ocr import LicensePlateRecognizer  # noqa: PLC0415 - optional extra
        from fast_plate_ocr.core import process  # noqa: PLC0415
    except ModuleNotFoundError:
        raise ConfigError(
            "fast-plate-ocr is not installed; install the edge extra: pip install 'privplate[edge]'"
        ) from None
    return LicensePlateRecognizer, process


class FastPlateRecognizer:
    """A fast-plate-ocr model from an ONNX file and its plate config (or a hub name)."""

    def __init__(
        self,
        model_path: Path | None = None,
        config_path: Path | None = None,
        *,
        hub_model: str | None = None,
        threads: int = 1,
    ) -> None:
        recognizer_cls, self._process = _fast_plate_ocr()
        options = session_options(threads)
        if model_path is not None and config_path is not None:
            self.engine = recognizer_cls(
                onnx_model_path=model_path,
                plate_config_path=config_path,
                device="cpu",
                sess_options=options,
            )
        elif hub_model is not None:
            self.engine = recognizer_cls(
                hub_ocr_model=hub_model, device="cpu", sess_options=options
            )
        else:
            raise ConfigError(
                "the recognizer needs a model file and its plate config, or a hub model"
            )
        config = self.engine.config
        self.alphabet: str = config.alphabet
        self.pad: str = config.pad_char
        self.slots: int = config.max_plate_slots
        self._config = config

    def prepare(self, crop: ImageArray) -> ImageArray:
        """One BGR crop as the model wants it (size, colour mode, interpolation, padding)."""
        cv2 = cv2_module()
        cfg = self._config
        if cfg.image_color_mode == "rgb":
            image = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        else:
            image = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        resized: ImageArray = self._process.resize_image(  # type: ignore[attr-defined]
            image,
            cfg.img_height,
            cfg.img_width,
            image_color_mode=cfg.image_color_mode,
            keep_aspect_ratio=cfg.keep_aspect_ratio,
            interpolation_method=cfg.interpolation,
            padding_color=cfg.padding_color,
        )
        return resized

    def recognize(self, crops: Sequence[ImageArray]) -> list[SlotProbabilities]:
        if not crops:
            return []
        batch = np.stack([self.prepare(c) for c in crops]).astype(np.uint8)
        engine = self.engine
        raw = engine.model.run([engine.plate_output_name], {"input": batch})[0]
        probs = np.asarray(raw, dtype=np.float32).reshape(
            len(crops), self.slots, len(self.alphabet)
        )
        return [SlotProbabilities(p, self.alphabet, self.pad) for p in probs]
