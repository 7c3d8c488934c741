"""MQTT as a sink of the alert outbox: each outbox endpoint (``webhooks`` row) gets a kind,
"http" for the receivers registered so far and "mqtt" for the broker of ``[mqtt]``, so MQTT
alerts are written, claimed, leased, retried and purged by the webhook outbox's own code.

Revision ID: 0018_mqtt_outbox
Revises: 0017_enrolment_codes
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_mqtt_outbox"
down_revision = "0017_enrolment_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="http", nullable=False)
        )


def downgrade() -> None:
    # The MQTT endpoint's delivery rows go with it: without a kind it would pass for an
    # HTTP receiver.
    op.execute(
        "DELETE FROM webhook_deliveries WHERE webhook_id IN "
        "(SELECT id FROM webhooks WHERE kind = 'mqtt')"
    )
    op.execute("DELETE FROM webhooks WHERE kind = 'mqtt'")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("kind")
