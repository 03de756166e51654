"""Create the conversation, machine, inbox and outbox tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def timestamp(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "conversation_states",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("conversation_type", sa.String(64), nullable=False),
        sa.Column("current_step", sa.String(128), nullable=True),
        sa.Column("state_data", JSON, nullable=False),
        timestamp("started_at"),
        timestamp("updated_at"),
        timestamp("expires_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("flow_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversation_states"),
        sa.UniqueConstraint(
            "user_id", "chat_id", "conversation_type", name="uq_conversation_states_user_id_chat_id_conversation_type"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_conversation_states_chat_id_user_id_updated_at", "conversation_states", ["chat_id", "user_id", "updated_at"]
    )
    op.create_index("ix_conversation_states_expires_at", "conversation_states", ["expires_at"])

    op.create_table(
        "user_machines",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("nickname", sa.String(100), nullable=False),
        sa.Column("nickname_key", sa.String(100), nullable=False),
        sa.Column("manufacturer", sa.Text(), nullable=True),
        sa.Column("model_number", sa.Text(), nullable=True),
        sa.Column("serial_number", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("photo_file_id", sa.String(255), nullable=True),
        sa.Column("ocr_data", JSON, nullable=True),
        timestamp("created_at"),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_user_machines"),
        sa.UniqueConstraint("user_id", "nickname", name="uq_user_machines_user_id_nickname"),
        sa.UniqueConstraint("user_id", "nickname_key", name="uq_user_machines_user_id_nickname_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_user_machines_user_id_created_at", "user_machines", ["user_id", "created_at"])

    op.create_table(
        "telegram_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("raw", JSON, nullable=False),
        sa.Column("event", JSON, nullable=True),
        timestamp("received_at"),
        timestamp("processed_at", nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("update_id", name="pk_telegram_updates"),
    )
    op.create_index(
        "ix_telegram_updates_chat_id_processed_at_update_id", "telegram_updates", ["chat_id", "processed_at", "update_id"]
    )
    op.create_index("ix_telegram_updates_processed_at_received_at", "telegram_updates", ["processed_at", "received_at"])

    op.create_table(
        "outbox_messages",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        timestamp("next_attempt_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("source_update_id", sa.BigInteger(), nullable=True),
        timestamp("created_at"),
        timestamp("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_messages"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_messages_status_next_attempt_at", "outbox_messages", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_messages_chat_id_id", "outbox_messages", ["chat_id", "id"])


def downgrade() -> None:
    for table in ("outbox_messages", "telegram_updates", "user_machines", "conversation_states"):
        op.drop_table(table)
