"""Receipts of stored device batches: a retry of a batch (same device, same batch id) is
answered from its receipt instead of being applied again; other bytes under a used batch id
are refused as tampered or re-serialized."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from privplate.store.database import Database
from privplate.store.ingest import IngestResult
from privplate.store.server_models import DeviceBatch


@dataclass(frozen=True)
class BatchReceipt:
    digest: bytes
    inserted: int
    duplicates: int
    expired: int


def stored_batch(db: Database, device_id: str, batch_id: uuid.UUID) -> BatchReceipt | None:
    with db.read() as conn:
        row = conn.execute(
            select(
                DeviceBatch.digest,
                DeviceBatch.inserted,
                DeviceBatch.duplicates,
                DeviceBatch.expired,
            ).where(DeviceBatch.device_id == device_id, DeviceBatch.batch_id == batch_id)
        ).first()
    if row is None:
        return None
    return BatchReceipt(bytes(row.digest), row.inserted, row.duplicates, row.expired)


def record_receipt(
    conn: Connection,
    *,
    device_id: str,
    batch_id: uuid.UUID,
    digest: bytes,
    result: IngestResult,
    now: datetime | None = None,
) -> None:
    """In the batch's own transaction. Two sends of one batch racing each other both store
    nothing twice (reads are keyed by id); the second receipt is simply not written again."""
    values = {
        "device_id": device_id,
        "batch_id": batch_id,
        "digest": digest,
        "received_at": now or datetime.now(UTC),
        "inserted": result.inserted,
        "duplicates": result.duplicates,
        "expired": result.expired,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(DeviceBatch).values(**values).on_conflict_do_nothing())
