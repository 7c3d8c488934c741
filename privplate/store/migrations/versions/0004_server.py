"""Server: users, sessions, API keys, devices, hotlists, alerts, webhooks, queries, flags.

Revision ID: 0004_server
Revises: 0003_legal_holds
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from privplate.store.types import UTCDateTime

revision = "0004_server"
down_revision = "0003_legal_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("read_id", sa.Uuid(), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("hotlist_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("via_alternate", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_read_id"), ["read_id"], unique=False)

    op.create_table(
        "compliance_flags",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("resolution", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_flags")),
        sa.UniqueConstraint(
            "kind", "subject", "day", name=op.f("uq_compliance_flags_kind_subject_day")
        ),
    )
    with op.batch_alter_table("compliance_flags", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_compliance_flags_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "device_batches",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "batch_id", name=op.f("pk_device_batches")),
    )
    with op.batch_alter_table("device_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_batches_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "device_nonces",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=16), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "nonce", name=op.f("pk_device_nonces")),
    )
    with op.batch_alter_table("device_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_nonces_seen_at"), ["seen_at"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("public_key", name=op.f("uq_devices_public_key")),
    )
    op.create_table(
        "hotlists",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("max_entries", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotlists")),
        sa.UniqueConstraint("name", name=op.f("uq_hotlists_name")),
    )
    op.create_table(
        "sharing_agreements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("out_of_state", sa.Boolean(), nullable=False),
        sa.Column("declaration_signed", sa.Boolean(), nullable=False),
        sa.Column("document_reference", sa.String(length=500), nullable=False),
        sa.Column("purposes", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_agreements")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_box", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_user_id"), ["user_id"], unique=False)

    op.create_table(
        "device_cameras",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_device_cameras_camera_id_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_cameras_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("device_id", "camera_id", name=op.f("pk_device_cameras")),
    )
    op.create_table(
        "hotlist_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hotlist_id", sa.Uuid(), nullable=False),
        sa.Column("plate_box", sa.LargeBinary(), nullable=False),
        sa.Column("plate_mac", sa.LargeBinary(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.Column("removed_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["hotlist_id"], ["hotlists.id"], name=op.f("fk_hotlist_entries_hotlist_id_hotlists")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotlist_entries")),
    )
    with op.batch_alter_table("hotlist_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hotlist_entries_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            "ix_hotlist_entries_list_mac", ["hotlist_id", "plate_mac"], unique=False
        )

    op.create_table(
        "queries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column("justification", sa.String(length=2000), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=True),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("window_end", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("match_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_queries_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queries")),
    )
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queries_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_queries_user_time", ["user_id", "created_at"], unique=False)

    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "hotlist_tokens",
        sa.Column("epoch_id", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.LargeBinary(length=16), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["hotlist_entries.id"],
            name=op.f("fk_hotlist_tokens_entry_id_hotlist_entries"),
        ),
        sa.PrimaryKeyConstraint("epoch_id", "token", "entry_id", name=op.f("pk_hotlist_tokens")),
    )
    with op.batch_alter_table("hotlist_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_hotlist_tokens_entry", ["entry_id"], unique=False)

    op.create_table(
        "hotlist_token_epochs",
        sa.Column("epoch_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("synced_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("epoch_id", name=op.f("pk_hotlist_token_epochs")),
    )


def downgrade() -> None:
    op.drop_table("hotlist_token_epochs")
    with op.batch_alter_table("hotlist_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_hotlist_tokens_entry")

    op.drop_table("hotlist_tokens")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_sessions_expires_at"))

    op.drop_table("sessions")
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.drop_index("ix_queries_user_time")
        batch_op.drop_index(batch_op.f("ix_queries_created_at"))

    op.drop_table("queries")
    with op.batch_alter_table("hotlist_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_hotlist_entries_list_mac")
        batch_op.drop_index(batch_op.f("ix_hotlist_entries_expires_at"))

    op.drop_table("hotlist_entries")
    op.drop_table("device_cameras")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_user_id"))

    op.drop_table("api_keys")
    op.drop_table("webhooks")
    op.drop_table("users")
    op.drop_table("sharing_agreements")
    op.drop_table("hotlists")
    op.drop_table("devices")
    with op.batch_alter_table("device_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_nonces_seen_at"))

    op.drop_table("device_nonces")
    with op.batch_alter_table("device_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_batches_received_at"))

    op.drop_table("device_batches")
    with op.batch_alter_table("compliance_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compliance_flags_created_at"))

    op.drop_table("compliance_flags")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_read_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_entry_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_created_at"))

    op.drop_table("alerts")
