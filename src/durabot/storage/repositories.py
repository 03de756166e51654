"""SQLAlchemy implementations of the engine's and the domain's storage ports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from durabot.domain.machines import Machine, MachineDraft, nickname_key
from durabot.engine.conversation import Conversation
from durabot.engine.events import Event
from durabot.engine.ports import StaleConversationError
from durabot.flows.model import Answers
from durabot.replies import Outgoing
from durabot.storage.tables import ConversationStateRow, OutboxMessageRow, TelegramUpdateRow, UserMachineRow


def _conversation(row: ConversationStateRow) -> Conversation:
    return Conversation(
        user_id=row.user_id,
        chat_id=row.chat_id,
        flow_name=row.conversation_type,
        flow_version=row.flow_version,
        answers=Answers.from_json(row.state_data),
        started_at=row.started_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        version=row.version,
        id=row.id,
        current_step=row.current_step,
    )


class SqlAlchemyConversationStore:
    """Conversations in ``conversation_states``, one row per user, chat and flow."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def active(self, user_id: int, chat_id: int) -> Conversation | None:
        query = (
            select(ConversationStateRow)
            .where(ConversationStateRow.user_id == user_id, ConversationStateRow.chat_id == chat_id)
            .order_by(ConversationStateRow.updated_at.desc(), ConversationStateRow.id.desc())
            .limit(1)
        )
        row = (await self._session.scalars(query)).first()
        return _conversation(row) if row else None

    async def find(self, user_id: int, chat_id: int, flow_name: str) -> Conversation | None:
        query = select(ConversationStateRow).where(
            ConversationStateRow.user_id == user_id,
            ConversationStateRow.chat_id == chat_id,
            ConversationStateRow.conversation_type == flow_name,
        )
        row = (await self._session.scalars(query)).first()
        return _conversation(row) if row else None

    async def save(self, conversation: Conversation) -> Conversation:
        values: dict[str, Any] = {
            "current_step": conversation.current_step,
            "state_data": conversation.answers.to_json(),
            "updated_at": conversation.updated_at,
            "expires_at": conversation.expires_at,
            "flow_version": conversation.flow_version,
            "version": conversation.version + 1,
        }
        if conversation.id is None:
            row = ConversationStateRow(
                user_id=conversation.user_id,
                chat_id=conversation.chat_id,
                conversation_type=conversation.flow_name,
                started_at=conversation.started_at,
                **values,
            )
            self._session.add(row)
            await self._session.flush()
            return _conversation(row)
        result = await self._session.execute(
            update(ConversationStateRow)
            .where(ConversationStateRow.id == conversation.id, ConversationStateRow.version == conversation.version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleConversationError(f"conversation {conversation.id} changed or vanished meanwhile")
        return replace(conversation, version=conversation.version + 1)

    async def delete(self, conversation_id: int) -> None:
        await self._session.execute(delete(ConversationStateRow).where(ConversationStateRow.id == conversation_id))

    async def delete_expired(self, now: datetime) -> int:
        result = await self._session.execute(
            delete(ConversationStateRow).where(ConversationStateRow.expires_at <= now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _machine(row: UserMachineRow) -> Machine:
    return Machine(
        user_id=row.user_id,
        nickname=row.nickname,
        manufacturer=row.manufacturer,
        model_number=row.model_number,
        serial_number=row.serial_number,
        location=row.location,
        notes=row.notes,
        id=row.id,
        created_at=row.created_at,
    )


class SqlAlchemyMachineRepository:
    """Machines in ``user_machines``; nicknames are unique per user ignoring case."""

    def __init__(self, session: AsyncSession, clock: Any) -> None:
        self._session = session
        self._clock = clock

    async def add(self, draft: MachineDraft) -> Machine:
        now = self._clock()
        row = UserMachineRow(
            user_id=draft.user_id,
            nickname=draft.nickname,
            nickname_key=nickname_key(draft.nickname),
            manufacturer=draft.manufacturer,
            model_number=draft.model_number,
            serial_number=draft.serial_number,
            location=draft.location,
            notes=draft.notes,
            created_at=now,
            updated_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return _machine(row)

    async def find_by_nickname(self, user_id: int, nickname: str) -> Machine | None:
        query = select(UserMachineRow).where(
            UserMachineRow.user_id == user_id, UserMachineRow.nickname_key == nickname_key(nickname)
        )
        row = (await self._session.scalars(query)).first()
        return _machine(row) if row else None

    async def count(self, user_id: int) -> int:
        query = select(func.count()).select_from(UserMachineRow).where(UserMachineRow.user_id == user_id)
        return int(await self._session.scalar(query) or 0)

    async def newest_first(self, user_id: int, offset: int, limit: int) -> list[Machine]:
        query = (
            select(UserMachineRow)
            .where(UserMachineRow.user_id == user_id)
            .order_by(UserMachineRow.created_at.desc(), UserMachineRow.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_machine(row) for row in await self._session.scalars(query)]


class SqlAlchemyInbox:
    """The inbox in ``telegram_updates``."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self._insert = pg_insert if dialect == "postgresql" else sqlite_insert

    async def add(self, events: Sequence[Event], now: datetime, raw: Mapping[int, Any] | None = None) -> int:
        if not events:
            return 0
        rows = [
            {
                "update_id": event.update_id,
                "chat_id": event.chat_id,
                "user_id": event.user_id,
                "raw": (raw or {}).get(event.update_id, event.to_json()),
                "event": event.to_json(),
                "received_at": now,
            }
            for event in events
        ]
        statement = self._insert(TelegramUpdateRow).values(rows).on_conflict_do_nothing(index_elements=["update_id"])
        result = await self._session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def next_pending(self, chat_id: int) -> Event | None:
        query = (
            select(TelegramUpdateRow.event)
            .where(TelegramUpdateRow.chat_id == chat_id, TelegramUpdateRow.processed_at.is_(None))
            .order_by(TelegramUpdateRow.update_id)
            .limit(1)
        )
        data = await self._session.scalar(query)
        return Event.from_json(data) if data else None

    async def chats_with_pending(self, limit: int = 100) -> list[int]:
        query = (
            select(TelegramUpdateRow.chat_id)
            .where(TelegramUpdateRow.processed_at.is_(None), TelegramUpdateRow.chat_id.is_not(None))
            .group_by(TelegramUpdateRow.chat_id)
            .order_by(func.min(TelegramUpdateRow.received_at), func.min(TelegramUpdateRow.update_id))
            .limit(limit)
        )
        return [int(chat_id) for chat_id in await self._session.scalars(query) if chat_id is not None]

    async def mark_done(self, update_id: int, outcome: str, now: datetime, error: str | None = None) -> None:
        await self._session.execute(
            update(TelegramUpdateRow)
            .where(TelegramUpdateRow.update_id == update_id)
            .values(processed_at=now, outcome=outcome, error=error)
        )

    async def prune(self, processed_before: datetime) -> int:
        result = await self._session.execute(
            delete(TelegramUpdateRow).where(TelegramUpdateRow.processed_at < processed_before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


class SqlAlchemyOutbox:
    """The outbox in ``outbox_messages``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, chat_id: int, messages: Sequence[Outgoing], update_id: int | None, now: datetime) -> None:
        self._session.add_all(
            OutboxMessageRow(
                chat_id=chat_id,
                method=message.method,
                payload=message.payload(),
                status="pending",
                attempts=0,
                next_attempt_at=now,
                source_update_id=update_id,
                created_at=now,
            )
            for message in messages
        )
        await self._session.flush()
