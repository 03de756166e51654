"""The conversation, machine and outbox stores in SQLAlchemy Core, their statements built once (the inbox is in ``inbox.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.clock import Clock
from durabot.domain.machines import Machine, MachineDraft, nickname_key
from durabot.engine.conversation import Conversation, Tombstone
from durabot.engine.ports import StaleConversationError
from durabot.engine.writes import ConversationWrite
from durabot.flows.model import Answers
from durabot.outbox import OutboxStatus, encode
from durabot.replies import Outgoing
from durabot.storage.tables import ConversationStateRow, ConversationTombstoneRow, OutboxMessageRow, UserMachineRow

CONVERSATIONS: Table = ConversationStateRow.__table__  # type: ignore[assignment]
TOMBSTONES: Table = ConversationTombstoneRow.__table__  # type: ignore[assignment]
MACHINES: Table = UserMachineRow.__table__  # type: ignore[assignment]
OUTBOX: Table = OutboxMessageRow.__table__  # type: ignore[assignment]

TOMBSTONE_BATCH = 500
"""Tombstones written per statement (SQLite caps the parameters of one statement)."""

_c = CONVERSATIONS.c
_MOST_RECENT = (_c.updated_at.desc(), _c.id.desc())
_OF_CHAT = select(CONVERSATIONS).where(_c.user_id == bindparam("user_id"), _c.chat_id == bindparam("chat_id"))
_ACTIVE = _OF_CHAT.order_by(*_MOST_RECENT).limit(1)
_FIND = _OF_CHAT.where(_c.conversation_type == bindparam("flow_name"))
_INSERT_CONVERSATION = insert(CONVERSATIONS)
_UPDATE_CONVERSATION = (
    update(CONVERSATIONS)
    .where(_c.id == bindparam("conversation_id"), _c.version == bindparam("expected_version"))
    .values(
        current_step=bindparam("current_step"),
        state_data=bindparam("state_data"),
        updated_at=bindparam("updated_at"),
        expires_at=bindparam("expires_at"),
        flow_version=bindparam("flow_version"),
        version=bindparam("new_version"),
    )
)
_DELETE_CONVERSATION = delete(CONVERSATIONS).where(_c.id == bindparam("conversation_id"))

_t = TOMBSTONES.c
_TOMBSTONE_COLUMNS = (_t.user_id, _t.chat_id, _t.conversation_type, _t.expired_at, _t.created_at)
_OF_CHAT_TOMBSTONES = (
    select(*_TOMBSTONE_COLUMNS)
    .where(_t.user_id == bindparam("user_id"), _t.chat_id == bindparam("chat_id"))
    .order_by(_t.expired_at)
)
_DELETE_TOMBSTONES = delete(TOMBSTONES).where(_t.user_id == bindparam("user_id"), _t.chat_id == bindparam("chat_id"))

_m = MACHINES.c
_MACHINE_BY_KEY = select(MACHINES).where(_m.user_id == bindparam("user_id"), _m.nickname_key == bindparam("key"))
_MACHINE_COUNT = select(func.count()).select_from(MACHINES).where(_m.user_id == bindparam("user_id"))
_INSERT_MACHINE = insert(MACHINES).returning(_m.id)

_INSERT_OUTBOX = insert(OUTBOX)


def conversation_of_row(row: Row[Any]) -> Conversation:
    """The conversation a ``conversation_states`` row holds."""
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


def _state(conversation: Conversation) -> dict[str, Any]:
    """The columns a save writes."""
    return {
        "current_step": conversation.current_step,
        "state_data": conversation.answers.to_json(),
        "updated_at": conversation.updated_at,
        "expires_at": conversation.expires_at,
        "flow_version": conversation.flow_version,
    }


def conversation_row(conversation: Conversation, version: int) -> dict[str, Any]:
    """Every column of a conversation's row, stored at ``version``."""
    row = {
        "user_id": conversation.user_id,
        "chat_id": conversation.chat_id,
        "conversation_type": conversation.flow_name,
        "started_at": conversation.started_at,
        "version": version,
        **_state(conversation),
    }
    return row if conversation.id is None else {"id": conversation.id, **row}


def _tombstone(row: Row[Any]) -> Tombstone:
    return Tombstone(row.user_id, row.chat_id, row.conversation_type, row.expired_at, row.created_at)


class SqlAlchemyConversationStore:
    """Conversations in ``conversation_states``, one row per user, chat and flow."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def active(self, user_id: int, chat_id: int) -> Conversation | None:
        row = (await self._connection.execute(_ACTIVE, {"user_id": user_id, "chat_id": chat_id})).first()
        return conversation_of_row(row) if row else None

    async def find(self, user_id: int, chat_id: int, flow_name: str) -> Conversation | None:
        parameters = {"user_id": user_id, "chat_id": chat_id, "flow_name": flow_name}
        row = (await self._connection.execute(_FIND, parameters)).first()
        return conversation_of_row(row) if row else None

    async def of_chat(self, user_id: int, chat_id: int) -> list[Conversation]:
        rows = await self._connection.execute(_OF_CHAT, {"user_id": user_id, "chat_id": chat_id})
        return sorted(map(conversation_of_row, rows), key=lambda c: (c.updated_at, c.id or 0), reverse=True)

    async def save(self, conversation: Conversation) -> Conversation:
        if conversation.id is None:
            result = await self._connection.execute(
                _INSERT_CONVERSATION.returning(_c.id), conversation_row(conversation, conversation.version + 1)
            )
            return replace(conversation, id=result.scalar_one(), version=conversation.version + 1)
        saved = replace(conversation, version=conversation.version + 1)
        await self._update(conversation.id, saved, conversation.version)
        return saved

    async def apply(self, write: ConversationWrite) -> None:
        if write.conversation is None:
            await self.delete(write.id)
        elif write.expected_version is None:
            await self._connection.execute(_INSERT_CONVERSATION, conversation_row(write.conversation, write.conversation.version))
        else:
            await self._update(write.id, write.conversation, write.expected_version)

    async def _update(self, conversation_id: int, conversation: Conversation, expected_version: int) -> None:
        """Store ``conversation`` (at its own version) where the row is still at ``expected_version``."""
        parameters = {
            "conversation_id": conversation_id,
            "expected_version": expected_version,
            "new_version": conversation.version,
            **_state(conversation),
        }
        result = await self._connection.execute(_UPDATE_CONVERSATION, parameters)
        if result.rowcount != 1:
            raise StaleConversationError(f"conversation {conversation_id} changed or vanished meanwhile")

    async def delete(self, conversation_id: int) -> None:
        await self._connection.execute(_DELETE_CONVERSATION, {"conversation_id": conversation_id})

    async def delete_expired(self, now: datetime) -> int:
        expired = (
            await self._connection.execute(
                delete(CONVERSATIONS)
                .where(_c.expires_at <= now)
                .returning(_c.user_id, _c.chat_id, _c.conversation_type, _c.expires_at)
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
        upsert = pg_insert if self._connection.dialect.name == "postgresql" else sqlite_insert
        statement = upsert(TOMBSTONES).values(rows)
        await self._connection.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id", "chat_id", "conversation_type"],
                set_={"expired_at": statement.excluded.expired_at, "created_at": statement.excluded.created_at},
            )
        )

    async def take_tombstones(self, user_id: int, chat_id: int) -> list[Tombstone]:
        taken = await self.tombstones(user_id, chat_id)
        if taken:
            await self.delete_tombstones(user_id, chat_id)
        return taken

    async def tombstones(self, user_id: int, chat_id: int) -> list[Tombstone]:
        rows = await self._connection.execute(_OF_CHAT_TOMBSTONES, {"user_id": user_id, "chat_id": chat_id})
        return [_tombstone(row) for row in rows]

    async def delete_tombstones(self, user_id: int, chat_id: int) -> None:
        await self._connection.execute(_DELETE_TOMBSTONES, {"user_id": user_id, "chat_id": chat_id})

    async def prune_tombstones(self, created_before: datetime) -> int:
        result = await self._connection.execute(delete(TOMBSTONES).where(_t.created_at < created_before))
        return int(result.rowcount)

    async def of_user(self, user_id: int) -> tuple[list[Conversation], list[Tombstone]]:
        live = select(CONVERSATIONS).where(_c.user_id == user_id).order_by(_c.started_at, _c.id)
        gone = select(*_TOMBSTONE_COLUMNS).where(_t.user_id == user_id).order_by(_t.expired_at, _t.id)
        conversations = [conversation_of_row(found) for found in await self._connection.execute(live)]
        return conversations, [_tombstone(found) for found in await self._connection.execute(gone)]

    async def forget_user(self, user_id: int) -> int:
        await self._connection.execute(delete(TOMBSTONES).where(_t.user_id == user_id))
        result = await self._connection.execute(delete(CONVERSATIONS).where(_c.user_id == user_id))
        return int(result.rowcount)


def _machine(row: Row[Any]) -> Machine:
    return Machine(
        user_id=row.user_id,
        nickname=row.nickname,
        manufacturer=row.manufacturer,
        model_number=row.model_number,
        serial_number=row.serial_number,
        location=row.location,
        notes=row.notes,
        photo_file_id=row.photo_file_id,
        id=row.id,
        created_at=row.created_at,
    )


class SqlAlchemyMachineRepository:
    """Machines in ``user_machines``; nicknames are unique per user ignoring case."""

    def __init__(self, connection: AsyncConnection, clock: Clock) -> None:
        self._connection = connection
        self._clock = clock

    async def add(self, draft: MachineDraft) -> Machine:
        now = self._clock()
        values = {**vars(draft), "nickname_key": nickname_key(draft.nickname), "created_at": now, "updated_at": now}
        machine_id = (await self._connection.execute(_INSERT_MACHINE, values)).scalar_one()
        return Machine(**vars(draft), id=machine_id, created_at=now)

    async def find_by_nickname(self, user_id: int, nickname: str) -> Machine | None:
        parameters = {"user_id": user_id, "key": nickname_key(nickname)}
        row = (await self._connection.execute(_MACHINE_BY_KEY, parameters)).first()
        return _machine(row) if row else None

    async def count(self, user_id: int) -> int:
        return int((await self._connection.execute(_MACHINE_COUNT, {"user_id": user_id})).scalar_one())

    async def newest_first(self, user_id: int, offset: int, limit: int) -> list[Machine]:
        query = (
            select(MACHINES)
            .where(_m.user_id == user_id)
            .order_by(_m.created_at.desc(), _m.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [_machine(row) for row in await self._connection.execute(query)]

    async def forget_user(self, user_id: int) -> int:
        result = await self._connection.execute(delete(MACHINES).where(_m.user_id == user_id))
        return int(result.rowcount)


class SqlAlchemyOutbox:
    """The outbox in ``outbox_messages``."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, chat_id: int, messages: Sequence[Outgoing], update_id: int | None, now: datetime) -> None:
        rows = [
            {
                "chat_id": chat_id,
                "method": method,
                "payload": payload,
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "source_update_id": update_id,
                "created_at": now,
            }
            for method, payload in map(encode, messages)
        ]
        if rows:
            await self._connection.execute(_INSERT_OUTBOX, rows)

    async def prune_sent(self, sent_before: datetime) -> int:
        sent = OUTBOX.c.status == OutboxStatus.SENT.value
        result = await self._connection.execute(delete(OUTBOX).where(sent, OUTBOX.c.sent_at < sent_before))
        return int(result.rowcount)

    async def forget_chat(self, chat_id: int) -> int:
        result = await self._connection.execute(delete(OUTBOX).where(OUTBOX.c.chat_id == chat_id))
        return int(result.rowcount)
