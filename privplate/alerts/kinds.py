"""Why a device alert was raised, and the one line that says so (the ``reason`` consoles,
webhooks and MQTT show). Hotlist hits carry their entry's reason instead."""

from __future__ import annotations

from enum import StrEnum

from privplate.store.server_models import AlertKind


class Cause(StrEnum):
    NO_FRAME = "no_frame"  # no frame from the camera for health.silent_after_minutes
    NO_READ = "no_read"  # frames, but no read for health.no_read_after_minutes in daytime
    NO_REPORT = "no_report"  # the device's health reports stopped
    SPOOL_DEPTH = "spool_depth"  # more reads waiting than health.spool_backlog_reads
    SPOOL_AGE = "spool_age"  # the oldest waiting read is older than health.spool_backlog_minutes


_TEXT = {
    Cause.NO_FRAME: "camera silent: no frame",
    Cause.NO_READ: "camera silent: no read in daytime",
    Cause.NO_REPORT: "camera silent: its device stopped reporting",
    Cause.SPOOL_DEPTH: "spool backlog: too many reads waiting",
    Cause.SPOOL_AGE: "spool backlog: reads waiting too long",
}
_CLEARED = {
    AlertKind.SILENT_CAMERA: "camera back: frames are arriving again",
    AlertKind.SPOOL_BACKLOG: "spool backlog cleared",
}


def describe(kind: str, cause: str | None, *, clearing: bool) -> str:
    """The reason line of a device alert (a raising row, or the row that clears it)."""
    if clearing:
        return _CLEARED.get(AlertKind(kind), "cleared")
    try:
        return _TEXT[Cause(cause or "")]
    except ValueError:
        return kind.replace("_", " ")
