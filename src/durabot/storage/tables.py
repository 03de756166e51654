"""The database tables, declared once for PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NICKNAME_KEY_LENGTH = 300
"""Room for a case-folded nickname: folding can triple a string's length (``ΐ`` folds to three characters)."""

Json = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")
"""An auto-incrementing key: BIGINT on PostgreSQL, the rowid alias INTEGER on SQLite."""


class Base(DeclarativeBase):
    """Base of every table; constraint names follow :data:`NAMING_CONVENTION`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: Json, int: BigInteger()}


class ConversationStateRow(Base):
    """A user's unfinished conversation in a chat."""

    __tablename__ = "conversation_states"
    __table_args__ = (
        UniqueConstraint("user_id", "chat_id", "conversation_type"),
        Index(None, "chat_id", "user_id", "updated_at"),
        Index(None, "expires_at"),
        {"sqlite_autoincrement": True},  # ids are never reused: stale buttons must not match a new conversation
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[int]
    chat_id: Mapped[int]
    conversation_type: Mapped[str] = mapped_column(String(64))
    current_step: Mapped[str | None] = mapped_column(String(128))
    state_data: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)
    flow_version: Mapped[int] = mapped_column(Integer, default=1)


class UserMachineRow(Base):
    """A machine in a user's equipment library."""

    __tablename__ = "user_machines"
    __table_args__ = (
        UniqueConstraint("user_id", "nickname"),
        UniqueConstraint("user_id", "nickname_key"),
        Index(None, "user_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[int]
    nickname: Mapped[str] = mapped_column(String(100))
    nickname_key: Mapped[str] = mapped_column(String(NICKNAME_KEY_LENGTH))
    manufacturer: Mapped[str | None] = mapped_column(Text)
    model_number: Mapped[str | None] = mapped_column(Text)
    serial_number: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    photo_file_id: Mapped[str | None] = mapped_column(String(255))
    ocr_data: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TelegramUpdateRow(Base):
    """The inbox: every received update, kept from before it is confirmed until after it is applied.

    An update is identified by its bot, its ``update_id`` and a fingerprint of its content: a
    redelivery matches all three, while a different update under a known id (Telegram may restart
    its ids; a sandbox does on every start) is a new row. A chat's rows are applied in ``update_id``
    order, and in arrival (``id``) order under the same ``update_id``.
    """

    __tablename__ = "telegram_updates"
    __table_args__ = (
        UniqueConstraint("bot_id", "update_id", "fingerprint"),
        Index(None, "chat_id", "processed_at", "update_id"),
        Index(None, "processed_at", "received_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    bot_id: Mapped[int]
    update_id: Mapped[int]
    fingerprint: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[int | None]
    user_id: Mapped[int | None]
    raw: Mapped[dict[str, Any]]
    event: Mapped[dict[str, Any] | None]
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)


class OutboxMessageRow(Base):
    """A message waiting to be sent, or the record of one that was sent or given up on."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "chat_id", "id"),
        Index(  # unsent rows by chat, oldest first: the relay finds each chat's head without scanning sent rows
            "ix_outbox_messages_unsent_chat_id_id_next_attempt_at",
            "chat_id",
            "id",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
            sqlite_where=text("status IN ('pending', 'sending')"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    chat_id: Mapped[int]
    method: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    source_update_id: Mapped[int | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class CaseRow(Base):
    """A client's case; ``client_id`` is a real column, not buried in ``data``."""

    __tablename__ = "cases"
    __table_args__ = (Index(None, "user_id", "created_at"), Index(None, "client_id"))

    case_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[int]
    client_id: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    case_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


class CaseIntakeProgressRow(Base):
    """One intake's progress; it cannot outlive or predate its case (foreign key, on delete cascade)."""

    __tablename__ = "case_intake_progress"
    __table_args__ = (Index(None, "user_id", "updated_at"),)

    case_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int]
    current_block: Mapped[str | None] = mapped_column(String(64))
    current_step: Mapped[str | None] = mapped_column(String(128))
    completed_blocks: Mapped[list[str]] = mapped_column(Json)
    answers: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ConversationTombstoneRow(Base):
    """What is left of a conversation the cleanup removed, so the user's next message learns it expired."""

    __tablename__ = "conversation_tombstones"
    __table_args__ = (
        UniqueConstraint("user_id", "chat_id", "conversation_type"),
        Index(None, "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[int]
    chat_id: Mapped[int]
    conversation_type: Mapped[str] = mapped_column(String(64))
    expired_at: Mapped[datetime]
    created_at: Mapped[datetime]


class RelayWorkerRow(Base):
    """A relay of a bot that says it is alive; the bot's live relays split its overall send rate (migration 0006)."""

    __tablename__ = "relay_workers"
    __table_args__ = (Index(None, "bot_id", "heartbeat_at"),)

    bot_id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


class OperatorRow(Base):
    """Someone who may log in to the operator console (migration 0007); created with ``durabot admin add-user``."""

    __tablename__ = "operators"
    __table_args__ = (UniqueConstraint("name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class OperatorSessionRow(Base):
    """A logged-in operator's session: the hash of its cookie's token, and the token its forms must carry (CSRF)."""

    __tablename__ = "operator_sessions"
    __table_args__ = (Index(None, "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class OperatorAuditRow(Base):
    """What an operator did in the console (or tried to: a failed login), and when."""

    __tablename__ = "operator_audit"
    __table_args__ = (Index(None, "at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    operator_name: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class CaseReviewRow(Base):
    """Where the practice's review of a case stands (``in_review``, ``needs_info``, ``accepted``), set in the console."""

    __tablename__ = "case_reviews"

    case_id: Mapped[UUID] = mapped_column(Uuid, ForeignKey("cases.case_id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(32))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class FlowFunnelCountRow(Base):
    """How many conversations of a flow met a funnel event on a day (UTC): started, reached a step, ended (migration 0008).

    ``event`` is a :data:`~durabot.engine.writes.FlowEventKind`; ``step`` names the step reached for
    ``step`` events and is ``""`` for the others. Each worker adds its sums to ``count``.
    """

    __tablename__ = "flow_funnel_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    flow: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(16), primary_key=True)
    step: Mapped[str] = mapped_column(String(128), primary_key=True)
    count: Mapped[int]
