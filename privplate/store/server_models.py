"""Tables of the server: people and devices, hotlists, alerts, queries and compliance flags.

Hotlist plates are stored only as SecretBox ciphertext (``plate_box``) plus a keyed MAC for
de-duplication; queries keep who asked, why and how many reads matched, never the plate.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from privplate.store.models import Base


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: The person the account belongs to, as declared by the administrator who created it: the
    #: name of their first account. Two-person checks compare this, never the account.
    person: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(32))
    #: Argon2id (PyNaCl ``pwhash``); NULL for service accounts that only use API keys.
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    agency: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Session(Base):
    """A bearer session. Only a hash of the bearer token is stored."""

    __tablename__ = "sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    #: Public and not secret: its owner lists and revokes sessions by it, never by the token.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    #: Refreshed at most about once a minute; a session idle for longer than the setting
    #: ``session_idle_minutes`` is refused.
    last_used_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SignInFailure(Base):
    """One failed (or in-flight) sign-in, counted against a keyed hash of the account name or
    of the client address: neither is stored (identity/throttle.py)."""

    __tablename__ = "sign_in_failures"
    __table_args__ = (Index("ix_sign_in_failures_key_failed_at", "key", "failed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[bytes] = mapped_column(LargeBinary(32))
    failed_at: Mapped[datetime] = mapped_column(index=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Device(Base):
    """An edge device: it signs its requests with the Ed25519 key registered here."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class DeviceCamera(Base):
    """Which cameras a device may report for."""

    __tablename__ = "device_cameras"
    __table_args__ = (PrimaryKeyConstraint("device_id", "camera_id"),)

    device_id: Mapped[str] = mapped_column(String(64), ForeignKey("devices.id"))
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"))


class DeviceNonce(Base):
    """Nonces of signed device requests seen within the allowed age: a replay is refused."""

    __tablename__ = "device_nonces"
    __table_args__ = (PrimaryKeyConstraint("device_id", "nonce"),)

    device_id: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(16))
    seen_at: Mapped[datetime] = mapped_column(index=True)


class DeviceBatch(Base):
    """Batches already stored, by the device's batch id: a retry is answered, not re-applied."""

    __tablename__ = "device_batches"
    __table_args__ = (PrimaryKeyConstraint("device_id", "batch_id"),)

    device_id: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    received_at: Mapped[datetime] = mapped_column(index=True)
    inserted: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    expired: Mapped[int] = mapped_column(Integer)


class Hotlist(Base):
    __tablename__ = "hotlists"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(2000), default="")
    max_entries: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class HotlistEntry(Base):
    __tablename__ = "hotlist_entries"
    __table_args__ = (Index("ix_hotlist_entries_list_mac", "hotlist_id", "plate_mac"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    hotlist_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("hotlists.id"))
    #: SecretBox(canonical plate) under the hotlist key; nonce included.
    plate_box: Mapped[bytes] = mapped_column(LargeBinary)
    #: Keyed MAC of the canonical plate: finds duplicates without decrypting the list.
    plate_mac: Mapped[bytes] = mapped_column(LargeBinary(32))
    reason: Mapped[str] = mapped_column(String(500))
    case_number: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    removed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    removed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class HotlistToken(Base):
    """An entry's token under one epoch key; rows of destroyed epochs go with their key."""

    __tablename__ = "hotlist_tokens"
    __table_args__ = (
        PrimaryKeyConstraint("epoch_id", "token", "entry_id"),
        Index("ix_hotlist_tokens_entry", "entry_id"),
    )

    epoch_id: Mapped[int] = mapped_column(BigInteger)
    token: Mapped[bytes] = mapped_column(LargeBinary(16))
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("hotlist_entries.id"))


class AlertKind(StrEnum):
    """What raised an alert: a read matching a hotlist entry, or an edge device's health
    (privplate.alerts.device_alerts). Only hotlist hits are hits: transparency reports and
    outcomes concern them alone."""

    HOTLIST_HIT = "hotlist_hit"
    SILENT_CAMERA = "silent_camera"
    SPOOL_BACKLOG = "spool_backlog"


class Alert(Base):
    """An alert. A hotlist hit names its read and list entry; a device alert (silent camera,
    spool backlog) names the camera or device and why, and its hotlist columns are NULL. A
    device alert's episode ends with a second row of the same kind whose ``clears`` is the
    raising alert's id (and the raising row's ``cleared_at`` is set)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), server_default=AlertKind.HOTLIST_HIT.value)
    read_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True, nullable=True)
    #: A hit: when the read was made; a device alert: when the condition was found.
    observed_at: Mapped[datetime]
    #: A device alert about a device (spool backlog) names the device's first camera.
    camera_id: Mapped[str] = mapped_column(String(64))
    hotlist_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    entry_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True, nullable=True)
    via_alternate: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    confidence: Mapped[float | None] = mapped_column(nullable=True)
    #: Device alerts: the device, why (privplate.alerts.device_alerts.Cause), the alert this
    #: row clears (a clearing row), and when the raising row's episode was cleared.
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    clears: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), nullable=True
    )
    cleared_at: Mapped[datetime | None] = mapped_column(nullable=True)
    evidence_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    #: What came of it, as reported by an operator or investigator (AlertOutcome).
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SinkKind(StrEnum):
    """Where an outbox endpoint delivers: an HTTP receiver registered through the webhook API,
    or the MQTT broker of ``[mqtt]`` (one row, kept in step with the settings)."""

    HTTP = "http"
    MQTT = "mqtt"


class Webhook(Base):
    """An endpoint of the alert outbox (privplate.alerts.outbox): every active one gets a
    delivery row per alert, whatever its kind."""

    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), server_default=SinkKind.HTTP.value)
    #: An http(s) receiver's URL; for the MQTT endpoint, mqtt(s)://host:port/prefix (no
    #: credentials), for the record.
    url: Mapped[str] = mapped_column(String(2000))
    #: The HMAC secret, SecretBox-encrypted under the server's webhook key.
    secret_box: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SharingAgreement(Base):
    """Another agency's standing to have queries run on its behalf. None exist by default."""

    __tablename__ = "sharing_agreements"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    agency: Mapped[str] = mapped_column(String(200))
    out_of_state: Mapped[bool] = mapped_column(Boolean)
    #: Illinois-style written declaration that the data will not serve forbidden purposes.
    declaration_signed: Mapped[bool] = mapped_column(Boolean)
    document_reference: Mapped[str] = mapped_column(String(500))
    purposes: Mapped[str] = mapped_column(Text)  # JSON list of purposes
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class QueryOutcome(StrEnum):
    """What became of a search: answered, denied by the policy, or refused over quota."""

    ANSWERED = "answered"
    DENIED = "denied"
    REFUSED = "refused"


class Query(Base):
    """One plate query: who, why, the window and the outcome. Never the plate."""

    __tablename__ = "queries"
    __table_args__ = (Index("ix_queries_user_time", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    case_number: Mapped[str] = mapped_column(String(64))
    justification: Mapped[str] = mapped_column(String(2000))
    agreement_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    #: A QueryOutcome: "answered", "denied" (policy) or "refused" (quota).
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")
    match_count: Mapped[int] = mapped_column(Integer, default=0)
    #: When the answered query's tokens were looked up: each recorded query is looked up once.
    looked_up_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ComplianceFlag(Base):
    """Something a compliance officer must look at: a denied query, a quota hit."""

    __tablename__ = "compliance_flags"
    __table_args__ = (UniqueConstraint("kind", "subject", "day"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    #: Whom it is about (a user name, or "deployment"); one flag per kind, subject and day.
    subject: Mapped[str] = mapped_column(String(200))
    day: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(index=True)
    details: Mapped[str] = mapped_column(Text)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    reviewed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(2000), nullable=True)


class HotlistTokenEpoch(Base):
    """Epochs whose hotlist tokens are complete: every entry live at that time has its token,
    and entries added later are tokenized under every such epoch when they are created."""

    __tablename__ = "hotlist_token_epochs"

    epoch_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    synced_at: Mapped[datetime]
