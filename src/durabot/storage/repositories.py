"""SQLAlchemy implementations of the conversation, machine and outbox ports (the inbox is in ``inbox.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from durabot.domain.machines import Machine, MachineDraft, nickname_key
from durabot.engine.conversation import Conversation, Tombstone
from durabot.engine.ports import StaleConversationError
from durabot.flows.model import Answers
from durabot.outbox import OutboxStatus, encode
from durabot.replies import Outgoing
from durabot.storage.tables import (
    ConversationStateRow,
    ConversationTombstoneRow,
    OutboxMessageRow,
    UserMachineRow,
)


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


TOMBSTONE_BATCH = 500
"""Tombstones written per statement (SQLite caps the parameters of one statement)."""


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
        row = ConversationStateRow
        expired = (
            await self._session.execute(
                delete(row)
                .where(row.expires_at <= now)
                .returning(row.user_id, row.chat_id, row.conversation_type, row.expires_at)
                .execution_options(synchronize_session=False)
            )
        ).all()
        for start in range(0, len(expired), TOMBSTONE_BATCH):
            await self._leave_tombstones(
                [
                    {
                        "user_id": gone.user_id,
                        "chat_id": gone.chat_id,
                        "conversation_type": gone.conversation_type,
                        "expired_at": gone.expires_at,
                        "created_at": now,
                    }
                    for gone in expired[start : start + TOMBSTONE_BATCH]
                ]
            )
        return len(expired)

    async def _leave_tombstones(self, rows: list[dict[str, Any]]) -> None:
        """Insert tombstones, replacing one already there for the same user, chat and flow."""
        insert = pg_insert if self._session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert(ConversationTombstoneRow).values(rows)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id", "chat_id", "conversation_type"],
                set_={"expired_at": statement.excluded.expired_at, "created_at": statement.excluded.created_at},
            )
        )

    async def take_tombstones(self, user_id: int, chat_id: int) -> list[Tombstone]:
        row = ConversationTombstoneRow
        taken = await self._session.execute(
            delete(row)
            .where(row.user_id == user_id, row.chat_id == chat_id)
            .returning(row.user_id, row.chat_id, row.conversation_type, row.expired_at, row.created_at)
            .execution_options(synchronize_session=False)
        )
        return sorted((Tombstone(*found) for found in taken), key=lambda tombstone: tombstone.expired_at)

    async def prune_tombstones(self, created_before: datetime) -> int:
        result = await self._session.execute(
            delete(ConversationTombstoneRow).where(ConversationTombstoneRow.created_at < created_before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def of_user(self, user_id: int) -> tuple[list[Conversation], list[Tombstone]]:
        row, tomb = ConversationStateRow, ConversationTombstoneRow
        live = select(row).where(row.user_id == user_id).order_by(row.started_at, row.id)
        gone = select(tomb).where(tomb.user_id == user_id).order_by(tomb.expired_at, tomb.id)
        conversations = [_conversation(found) for found in await self._session.scalars(live)]
        return conversations, [_tombstone(found) for found in await self._session.scalars(gone)]

    async def forget_user(self, user_id: int) -> int:
        session = self._session
        await session.execute(delete(ConversationTombstoneRow).where(ConversationTombstoneRow.user_id == user_id))
        result = await session.execute(delete(ConversationStateRow).where(ConversationStateRow.user_id == user_id))
        return int(result.rowcount)  # type: ignore[attr-defined]


def _tombstone(row: ConversationTombstoneRow) -> Tombstone:
    return Tombstone(row.user_id, row.chat_id, row.conversation_type, row.expired_at, row.created_at)


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

    async def forget_user(self, user_id: int) -> int:
        result = await self._session.execute(delete(UserMachineRow).where(UserMachineRow.user_id == user_id))
        return int(result.rowcount)  # type: ignore[attr-defined]


class SqlAlchemyOutbox:
    """The outbox in ``outbox_messages``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, chat_id: int, messages: Sequence[Outgoing], update_id: int | None, now: datetime) -> None:
        self._session.add_all(
            OutboxMessageRow(
                chat_id=chat_id,
                method=method,
                payload=payload,
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                source_update_id=update_id,
                created_at=now,
            )
            for method, payload in map(encode, messages)
        )
        await self._session.flush()

    async def prune_sent(self, sent_before: datetime) -> int:
        result = await self._session.execute(
            delete(OutboxMessageRow).where(OutboxMessageRow.status == "sent", OutboxMessageRow.sent_at < sent_before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def forget_chat(self, chat_id: int) -> int:
        result = await self._session.execute(delete(OutboxMessageRow).where(OutboxMessageRow.chat_id == chat_id))
        return int(result.rowcount)  # type: ignore[attr-defined]
