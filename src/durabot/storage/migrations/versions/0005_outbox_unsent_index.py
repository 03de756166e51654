"""Index the outbox's unsent rows by chat, so the relay finds each chat's oldest unsent row without a scan.

A partial index on ``(chat_id, id)`` over rows whose status is ``pending`` or ``sending``: it holds
only the backlog, however many sent rows the table keeps, and a relay claim reads each chat's
head from it. Building it reads the table once.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEX = "ix_outbox_messages_unsent_chat_id_id_next_attempt_at"
UNSENT = "status IN ('pending', 'sending')"


def upgrade() -> None:
    op.create_index(
        INDEX,
        "outbox_messages",
        ["chat_id", "id", "next_attempt_at"],
        postgresql_where=sa.text(UNSENT),
        sqlite_where=sa.text(UNSENT),
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="outbox_messages")
