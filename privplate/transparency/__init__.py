"""Public transparency reports built from the system's own records."""

from privplate.transparency.report import build_report, period_ending

__all__ = ["build_report", "period_ending"]
