"""Retention windows and purpose rules per jurisdiction."""

from privplate.retention.presets import (
    WINDOW_NAMES,
    Preset,
    WindowName,
    get_preset,
    load_presets,
    parse_duration,
)

__all__ = ["WINDOW_NAMES", "Preset", "WindowName", "get_preset", "load_presets", "parse_duration"]
