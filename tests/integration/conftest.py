"""Integration helpers: an engine on a real database and a chat driver that reads like a conversation."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from durabot.bootstrap import build_registry
from durabot.clock import FakeClock
from durabot.engine.events import Event
from durabot.engine.ports import UnitOfWorkFactory
from durabot.engine.registry import Registry
from durabot.engine.runner import Applied, Engine
from durabot.replies import CallbackAnswer, Reply
from durabot.storage.tables import Base, ConversationStateRow, OutboxMessageRow, UserMachineRow
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from durabot.testing import FakeUnitOfWorkFactory
from tests.conftest import ScratchDatabase, migrated_database

_update_ids = itertools.count(1000)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def factory(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> AsyncIterator[UnitOfWorkFactory]:
    """Units of work on the in-memory fakes, real SQLite and real PostgreSQL: one contract suite for all three."""
    if request.param == "memory":
        yield FakeUnitOfWorkFactory(clock)
        return
    async with migrated_database(request.param, tmp_path) as database:
        yield SqlAlchemyUnitOfWorkFactory(database, clock)



class Harness:
    """An engine, its units of work and its database handle, as one process would hold them."""

    def __init__(self, test_db: ScratchDatabase, clock: FakeClock, registry: Registry | None = None) -> None:
        self.test_db = test_db
        self.clock = clock
        self.database = test_db.open()
        self.factory = SqlAlchemyUnitOfWorkFactory(self.database, clock)
        self.engine = Engine(self.factory, registry or build_registry(), ttl=timedelta(hours=24), clock=clock)

    async def close(self) -> None:
        await self.database.dispose()

    async def rows(self, table: type[Base], *where: Any) -> list[Any]:
        async with self.database.engine.connect() as connection:
            query = select(table).where(*where) if where else select(table)
            return list((await connection.execute(query)).all())

    async def machines(self, user_id: int | None = None) -> list[Any]:
        where = [UserMachineRow.user_id == user_id] if user_id is not None else []
        return await self.rows(UserMachineRow, *where)

    async def conversations(self) -> list[Any]:
        return await self.rows(ConversationStateRow)

    async def outbox_texts(self, chat_id: int) -> list[str]:
        rows = await self.rows(OutboxMessageRow, OutboxMessageRow.chat_id == chat_id)
        rows.sort(key=lambda row: row.id)
        return [row.payload["text"] for row in rows if row.method == "send_message"]


class Chat:
    """One user in one chat, talking to the engine; each call returns the texts of the replies.

    By default the user's private chat (its id is the user's id); another chat id is a group.
    """

    def __init__(self, harness: Harness, chat_id: int = 701, user_id: int = 701) -> None:
        self.harness = harness
        self.chat_id = chat_id
        self.user_id = user_id
        self.last: list[Reply] = []

    def next_id(self) -> int:
        return next(_update_ids)

    async def send(self, event: Event) -> list[str]:
        applied = await self.harness.engine.handle(event)
        return self._texts(applied)

    async def say(self, text: str) -> list[str]:
        return await self.send(Event.message(self.next_id(), self.chat_id, self.user_id, text))

    async def content(self, content_type: str) -> list[str]:
        return await self.send(Event.content(self.next_id(), self.chat_id, self.user_id, content_type))

    async def press(self, label: str) -> list[str]:
        """Press the button labelled ``label`` under the most recent reply that has one."""
        for reply in reversed(self.last):
            for row in reply.buttons:
                for button in row:
                    if button.label == label:
                        event = Event.button(self.next_id(), self.chat_id, self.user_id, button.data, "cb")
                        return await self.send(event)
        raise AssertionError(f"no button {label!r} in the last replies")

    def _texts(self, applied: list[Applied]) -> list[str]:
        replies = [m for a in applied for m in a.outgoing if isinstance(m, Reply)]
        if replies:
            self.last = replies
        notices = [m.text for a in applied for m in a.outgoing if isinstance(m, CallbackAnswer) and m.text]
        return notices + [reply.text for reply in replies]


@pytest.fixture
async def harness(test_db: ScratchDatabase, clock: FakeClock) -> AsyncIterator[Harness]:
    h = Harness(test_db, clock)
    yield h
    await h.close()


@pytest.fixture
def chat(harness: Harness) -> Chat:
    return Chat(harness)
