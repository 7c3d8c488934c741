"""The edge extra's heavy imports, with one message that says how to get them."""

from __future__ import annotations

from types import ModuleType

from privplate.errors import ConfigError

_HINT = "install the edge extra: pip install 'privplate[edge]'"


def cv2_module() -> ModuleType:
    try:
        import cv2  # noqa: PLC0415 - optional dependency, imported on first use
    except ModuleNotFoundError:
        raise ConfigError(f"OpenCV is not installed; {_HINT}") from None
    module: ModuleType = cv2
    return module


def onnxruntime_module() -> ModuleType:
    try:
        import onnxruntime  # noqa: PLC0415 - optional dependency, imported on first use
    except ModuleNotFoundError:
        raise ConfigError(f"onnxruntime is not installed; {_HINT}") from None
    module: ModuleType = onnxruntime
    return module


def session_options(threads: int) -> object:
    """onnxruntime options: ``threads`` 0 lets onnxruntime use every core."""
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # onnxruntime warnings would clutter the edge's log
    # An idle pool thread that spins keeps its core busy between runs: the core the other
    # stage (OCR beside detection, the decoder, another camera's detector) needs. Sleeping
    # pool threads only matter for threads != 1 (a one-thread run has no pool).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options
