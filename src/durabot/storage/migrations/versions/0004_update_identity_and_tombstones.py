"""Identify updates by bot, id and fingerprint; room for folded nicknames; tombstones of expired conversations.

* ``telegram_updates`` gets a row id of its own, ``bot_id`` and ``fingerprint``, unique together with ``update_id``. Rows stored before this
  revision get ``bot_id`` 0 and an empty fingerprint, which matches any redelivery of them.
* ``user_machines.nickname_key`` grows to 300 characters: case folding can triple a nickname.
  Keys are recomputed the new way (invisible characters dropped, NFKC), except where that would
  make two machines of one user clash: those keep their old key.
* ``conversation_tombstones`` remembers conversations the cleanup removed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OLD_INBOX = "telegram_updates_0003"
INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")
COPIED_COLUMNS = "update_id, chat_id, user_id, raw, event, received_at, processed_at, outcome, error"


def timestamp(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _create_inbox() -> None:
    op.create_table(
        "telegram_updates",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("bot_id", sa.BigInteger(), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("raw", JSON, nullable=False),
        sa.Column("event", JSON, nullable=True),
        timestamp("received_at"),
        timestamp("processed_at", nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_telegram_updates"),
        sa.UniqueConstraint(
            "bot_id", "update_id", "fingerprint", name="uq_telegram_updates_bot_id_update_id_fingerprint"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_telegram_updates_chat_id_processed_at_update_id", "telegram_updates", ["chat_id", "processed_at", "update_id"]
    )
    op.create_index("ix_telegram_updates_processed_at_received_at", "telegram_updates", ["processed_at", "received_at"])


def _rebuild_inbox() -> None:
    """Move the inbox into its new shape, rows in ``update_id`` order so pending ones keep their order."""
    op.rename_table("telegram_updates", OLD_INBOX)
    op.drop_index("ix_telegram_updates_chat_id_processed_at_update_id", table_name=OLD_INBOX)
    op.drop_index("ix_telegram_updates_processed_at_received_at", table_name=OLD_INBOX)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("pk_telegram_updates", OLD_INBOX, type_="primary")
    _create_inbox()
    op.execute(
        f"INSERT INTO telegram_updates (bot_id, fingerprint, {COPIED_COLUMNS}) "
        f"SELECT 0, '', {COPIED_COLUMNS} FROM {OLD_INBOX} ORDER BY update_id"
    )
    op.drop_table(OLD_INBOX)


def nickname_key_0004(nickname: str) -> str:
    """The nickname key as this revision defines it (kept here so the migration never changes meaning)."""
    cleaned = " ".join(unicodedata.normalize("NFKC", INVISIBLE.sub("", nickname)).split())
    return unicodedata.normalize("NFKC", cleaned.casefold())


def _recompute_nickname_keys() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, user_id, nickname, nickname_key FROM user_machines ORDER BY id")).all()
    taken = {(row.user_id, row.nickname_key) for row in rows}
    for row in rows:
        new_key = nickname_key_0004(row.nickname)
        if new_key == row.nickname_key or (row.user_id, new_key) in taken:
            continue
        bind.execute(sa.text("UPDATE user_machines SET nickname_key = :key WHERE id = :id"), {"key": new_key, "id": row.id})
        taken.discard((row.user_id, row.nickname_key))
        taken.add((row.user_id, new_key))


def upgrade() -> None:
    _rebuild_inbox()
    with op.batch_alter_table("user_machines", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column(
            "nickname_key", type_=sa.String(300), existing_type=sa.String(100), existing_nullable=False
        )
    _recompute_nickname_keys()
    op.create_table(
        "conversation_tombstones",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("conversation_type", sa.String(64), nullable=False),
        timestamp("expired_at"),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_conversation_tombstones"),
        sa.UniqueConstraint(
            "user_id",
            "chat_id",
            "conversation_type",
            name="uq_conversation_tombstones_user_id_chat_id_conversation_type",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_conversation_tombstones_created_at", "conversation_tombstones", ["created_at"])


def downgrade() -> None:
    raise NotImplementedError("0004 gives the inbox a new identity and cannot be undone: restore a backup instead")
