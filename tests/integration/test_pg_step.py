"""On PostgreSQL a step's statements go through asyncpg, its writes mostly in one statement: the same rows as the Core statements."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Self

import pytest
from sqlalchemy import select

from durabot.bootstrap import build_registry
from durabot.clock import FakeClock
from durabot.engine.apply import apply_writes
from durabot.engine.events import Event
from durabot.engine.ports import StaleConversationError
from durabot.engine.writes import Handled, WriteSet
from durabot.replies import Reply
from durabot.engine.runner import Engine
from durabot.storage.database import Database
from durabot.storage.inbox import SqlAlchemyInbox
from durabot.storage.pg_step import PgStepConversations, PgStepInbox, PgStepOutbox
from durabot.storage.repositories import SqlAlchemyConversationStore, SqlAlchemyOutbox
from durabot.storage.tables import ConversationStateRow, OutboxMessageRow, TelegramUpdateRow, UserMachineRow
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWork, SqlAlchemyUnitOfWorkFactory
from tests.conftest import migrated_database

pytestmark = pytest.mark.postgres


class CoreOnlyUnitOfWork(SqlAlchemyUnitOfWork):
    """The unit of work with every store on SQLAlchemy Core, as on SQLite."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        assert isinstance(self.conversations, PgStepConversations), "PostgreSQL uses the driver's statements"
        self.conversations = SqlAlchemyConversationStore(self.connection)
        self.inbox = SqlAlchemyInbox(self.connection, "postgresql")
        self.outbox = SqlAlchemyOutbox(self.connection)
        return self

    async def apply(self, writes: WriteSet, event: Event, now: datetime) -> None:
        await apply_writes(writes, event, now, self.conversations, self.domains, self.inbox, self.outbox)


class CoreOnlyFactory(SqlAlchemyUnitOfWorkFactory):
    def __call__(self) -> SqlAlchemyUnitOfWork:
        return CoreOnlyUnitOfWork(self.database, self._clock)


@pytest.fixture
async def driver_db(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database("postgresql", tmp_path) as database:
        yield database


@pytest.fixture
async def core_db(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database("postgresql", tmp_path) as database:
        yield database


def conversation_of(texts: list[str], chat_id: int, user_id: int, first_id: int) -> list[Event]:
    return [Event.message(first_id + number, chat_id, user_id, text) for number, text in enumerate(texts)]


EVENTS = [
    *conversation_of(["/addmachine", "Presse «9» ünïcode", "Haas", "/skip", "SN-1"], 701, 701, 1),
    Event.content(6, 701, 701, "photo"),
    Event.message(7, 701, 701, "/back"),
    Event.message(8, 701, 701, "SN-1"),
    Event.message(9, 701, 701, "/skip"),
    Event.message(10, 701, 701, "notes with ümlauts"),
    Event.message(11, -100777, 702, "/library"),
    Event.button(12, 701, 701, "f:0:0:9", "cb-stale"),
    Event.message(13, 703, 703, "/intake"),
    Event.message(14, 703, 703, "Maria Ivanova"),
    Event.message(15, 703, 703, "/intake_cancel"),
]


def without_conversation_ids(value: Any) -> Any:
    """Button data carries the conversation's id, made by each step: the same position, another number."""
    return json.loads(re.sub(r'"f:\d+:', '"f:<id>:', json.dumps(value))) if isinstance(value, dict) else value


async def rows(database: Database, table: Any, *skip: str) -> list[dict[str, Any]]:
    async with database.engine.connect() as connection:
        found = (await connection.execute(select(table).order_by(*table.__table__.primary_key.columns))).mappings().all()
    return [{key: without_conversation_ids(value) for key, value in row.items() if key not in skip} for row in found]


async def test_the_driver_statements_write_the_same_rows_as_the_core_ones(
    driver_db: Database, core_db: Database, clock: FakeClock
) -> None:
    registry = build_registry(clock)
    engines = [
        Engine(SqlAlchemyUnitOfWorkFactory(driver_db, clock), registry, ttl=timedelta(hours=24), clock=clock),
        Engine(CoreOnlyFactory(core_db, clock), registry, ttl=timedelta(hours=24), clock=clock),
    ]
    for event in EVENTS:
        # what PostgreSQL can't store (a NUL, a lone surrogate) arrives in the raw JSON; the transport cleans event text
        raw = {event.update_id: {"update_id": event.update_id, "text": f"{event.text}\x00\ud800"}}
        for engine in engines:
            await engine.take_in([event], raw)
        clock.advance(timedelta(seconds=1))
    # a backlog: the second waits for the first, and the two-phase path (next_pending, mark_done) applies it
    backlog = conversation_of(["/addmachine", "Lathe"], 704, 704, 100)
    for engine in engines:
        await engine.receive(backlog)
        await engine.process_pending()

    for table, skip in (
        (ConversationStateRow, ("id",)),
        (TelegramUpdateRow, ("id",)),
        (OutboxMessageRow, ("id",)),
        (UserMachineRow, ("id",)),
    ):
        through_driver, through_core = await rows(driver_db, table, *skip), await rows(core_db, table, *skip)
        assert through_driver == through_core, table.__tablename__
    outcomes = [row["outcome"] for row in await rows(driver_db, TelegramUpdateRow)]
    assert outcomes == ["applied"] * len(EVENTS) + ["applied", "applied"]
    assert len(await rows(driver_db, OutboxMessageRow)) > len(EVENTS)


async def test_a_step_written_in_one_statement_over_a_conversation_changed_meanwhile_is_stale_and_writes_nothing(
    driver_db: Database, clock: FakeClock
) -> None:
    engine = Engine(SqlAlchemyUnitOfWorkFactory(driver_db, clock), build_registry(clock), clock=clock)
    await engine.handle(Event.message(1, 701, 701, "/addmachine"))
    [loaded] = await rows(driver_db, ConversationStateRow)
    factory = SqlAlchemyUnitOfWorkFactory(driver_db, clock)
    writes = WriteSet(outgoing=[Reply("never sent")])
    async with factory() as uow:
        [conversation] = await uow.conversations.of_chat(701, 701)
        writes.save(dataclasses.replace(conversation, version=conversation.version - 1))  # loaded before a change
        writes.handled = Handled("applied", None, None)
        with pytest.raises(StaleConversationError):
            await uow.apply(writes, Event.message(2, 701, 701, "Press 9"), clock())
    assert await rows(driver_db, ConversationStateRow) == [loaded]
    assert [row["update_id"] for row in await rows(driver_db, TelegramUpdateRow)] == [1]
    assert len(await rows(driver_db, OutboxMessageRow)) == 1
