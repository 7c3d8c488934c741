"""The token-only data model. No column ever holds plate text.

``reads`` and ``evidence`` are range-partitioned by ``observed_at`` on PostgreSQL so retention
can drop whole partitions; on SQLite they are plain tables with an expiry index.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from privplate.store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy's API


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, for the few steps that work on any table (purge
    batches, bulk inserts); everything else uses the mapped attributes."""
    table: Table = model.__table__  # type: ignore[assignment]
    return table


class Camera(Base):
    """A camera (and, once registered, the edge device that reports for it)."""

    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Ed25519 public key of the edge device that signs this camera's batches.
    device_public_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)


class Epoch(Base):
    """One token epoch. The wrapped key is erased (set to NULL) when the epoch expires."""

    __tablename__ = "epochs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime] = mapped_column(index=True)
    kek_generation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    destroyed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Read(Base):
    """One token of one observation. A read with alternates has one row per token.

    The primary key leads with ``observed_at`` so inserts land at the end of the B-tree (edges
    report in time order) and time-range scans (retention, de-duplication) use it directly;
    ``ix_reads_epoch_token`` is the only randomly-ordered index, the one lookups need; leading
    with the epoch keeps each ingest batch inside the current epoch's part of it.
    """

    __tablename__ = "reads"
    __table_args__ = (
        PrimaryKeyConstraint("observed_at", "read_id", "token"),
        Index("ix_reads_epoch_token", "epoch_id", "token"),
        # Hits are rare; this lets retention ask "any live hit in this day?" without a scan.
        Index(
            "ix_reads_hits",
            "observed_at",
            postgresql_where=text("is_hit"),
            sqlite_where=text("is_hit"),
        ),
        {"postgresql_partition_by": "RANGE (observed_at)"},
    )

    read_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    token: Mapped[bytes] = mapped_column(LargeBinary(16))
    observed_at: Mapped[datetime]
    epoch_id: Mapped[int] = mapped_column(BigInteger)
    is_alternate: Mapped[bool] = mapped_column(Boolean)
    #: Matched a hotlist entry at ingest: kept for the hit-read window instead of the non-hit one.
    is_hit: Mapped[bool] = mapped_column(Boolean)
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"))
    #: Expiry under the windows in force at ingest. Retention purges by ``observed_at`` and the
    #: windows in force at purge time, so shortening a window applies to stored reads too.
    expires_at: Mapped[datetime]
    confidence: Mapped[float] = mapped_column(Float)
    evidence_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)


class Evidence(Base):
    """A sealed image (plate crop and downscaled frame); only the evidence key opens it."""

    __tablename__ = "evidence"
    __table_args__ = (
        PrimaryKeyConstraint("observed_at", "id"),
        {"postgresql_partition_by": "RANGE (observed_at)"},
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid)
    observed_at: Mapped[datetime]
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"))
    expires_at: Mapped[datetime]
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class ReadCount(Base):
    """How many reads (and how many of them hits) each camera stored per day of observation.

    Totals only, for transparency reports; they outlive the reads, which retention deletes,
    and are themselves kept for the audit window.
    """

    __tablename__ = "read_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reads: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(BigInteger)


PARTITIONED_TABLES = ("reads", "evidence")


class AuditEntry(Base):
    """One leaf of the audit log. ``entry`` is the canonical JSON that was hashed.

    Pruning old entries (a whole prefix, under the audit retention window) erases ``entry``
    but keeps ``leaf_hash`` and ``mac`` so the tree, and every old checkpoint, still verifies.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_action_time", "action", "created_at"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    entry: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    #: HMAC of (seq, leaf hash) under a key derived from the signing key: a database writer
    #: without the key file cannot rewrite an entry and its hash consistently.
    mac: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed tree head: (tree size, root, time) signed with the deployment's Ed25519 key."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime]
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    #: What the signature covers: 1 = privplate's v1 body (rows signed before migration 0014,
    #: which keep verifying), 2 = a C2SP tlog-checkpoint signed note (audit/signing.py).
    format: Mapped[int] = mapped_column(Integer, server_default=text("1"))


class LegalHold(Base):
    """A hold that keeps one read or evidence item through retention purges.

    Requested by an investigator with a case number and justification; effective only once a
    different person approves it, and only until it expires or is released.
    """

    __tablename__ = "legal_holds"
    __table_args__ = (Index("ix_legal_holds_target", "target_kind", "target_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    target_kind: Mapped[str] = mapped_column(String(16))  # "read" or "evidence"
    target_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    #: When the held item was observed: retention finds the partitions with held rows from
    #: this table alone instead of scanning them.
    target_observed_at: Mapped[datetime]
    case_number: Mapped[str] = mapped_column(String(64))
    justification: Mapped[str] = mapped_column(String(2000))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime]
    approved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime]
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
