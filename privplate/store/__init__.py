"""The token-only store: cameras, epochs, reads and sealed evidence (SQLite or PostgreSQL)."""

from privplate.store.cameras import CameraInfo, get_camera, insert_camera, list_cameras
from privplate.store.database import Database
from privplate.store.epochs import SqlEpochStorage
from privplate.store.ingest import (
    EvidenceIn,
    IngestLimits,
    IngestResult,
    ReadIn,
    RetentionWindows,
    TokenIn,
    ingest_reads,
)
from privplate.store.lookup import ReadMatch, TokenProbe, find_reads

__all__ = [
    "CameraInfo",
    "Database",
    "EvidenceIn",
    "IngestLimits",
    "IngestResult",
    "ReadIn",
    "ReadMatch",
    "RetentionWindows",
    "SqlEpochStorage",
    "TokenIn",
    "TokenProbe",
    "find_reads",
    "get_camera",
    "ingest_reads",
    "insert_camera",
    "list_cameras",
]
