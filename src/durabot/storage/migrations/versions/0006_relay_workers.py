"""The relays of each bot say they are alive in ``relay_workers``, so the live ones can split the bot's send rate.

One row per relay process: ``(bot_id, worker_id)``, when it started and when it last heartbeat. A relay
unregisters (deletes its row) on a clean stop; a killed one's row ages out by its heartbeat.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_workers",
        sa.Column("bot_id", sa.BigInteger(), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bot_id", "worker_id", name="pk_relay_workers"),
    )
    op.create_index("ix_relay_workers_bot_id_heartbeat_at", "relay_workers", ["bot_id", "heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_relay_workers_bot_id_heartbeat_at", table_name="relay_workers")
    op.drop_table("relay_workers")
