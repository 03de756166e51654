"""The claim keeps each chat's pace across relays, on SQLite and PostgreSQL: the next message waits for its turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from durabot.clock import FakeClock
from durabot.replies import CallbackAnswer, Outgoing, Reply
from durabot.storage.database import Database
from durabot.storage.outbox_queue import SqlAlchemyOutboxQueue
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from tests.conftest import migrated_database

LEASE = timedelta(seconds=10)
PRIVATE, OTHER_PRIVATE, GROUP = 7, 8, -100


@pytest.fixture
async def database(db_kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database(db_kind, tmp_path) as migrated:
        yield migrated


async def put(database: Database, clock: FakeClock, chat_id: int, messages: Sequence[Outgoing]) -> None:
    async with SqlAlchemyUnitOfWorkFactory(database, clock)() as uow:
        await uow.outbox.add(chat_id, list(messages), None, clock())
        await uow.commit()


async def claimed_chats(queue: SqlAlchemyOutboxQueue) -> list[int]:
    """Claim, record every claimed row as sent, and return the chats claimed."""
    items = await queue.claim(50, LEASE)
    for item in items:
        await queue.mark_sent(item.id)
    return sorted(item.chat_id for item in items)


async def test_a_chats_next_message_waits_its_pace_whichever_relay_claims_it(database: Database, clock: FakeClock) -> None:
    one, two = SqlAlchemyOutboxQueue(database, clock, chat_rate=1), SqlAlchemyOutboxQueue(database, clock, chat_rate=1)
    await put(database, clock, PRIVATE, [Reply("a"), Reply("b")])
    await put(database, clock, GROUP, [Reply("g1"), Reply("g2")])
    await put(database, clock, OTHER_PRIVATE, [CallbackAnswer("cb-1", None), Reply("after the button")])
    assert await claimed_chats(one) == [GROUP, PRIVATE, OTHER_PRIVATE]
    assert await claimed_chats(two) == [OTHER_PRIVATE], "a callback answer does not hold back the reply after it"
    clock.advance(seconds=0.9)
    assert await claimed_chats(two) == []
    clock.advance(seconds=0.1)
    assert await claimed_chats(two) == [PRIVATE]
    clock.advance(seconds=1.9)
    assert await claimed_chats(one) == []
    clock.advance(seconds=0.1)
    assert await claimed_chats(one) == [GROUP], "a group's pace is 20 a minute"


async def test_a_paced_chat_does_not_hold_back_the_chats_behind_it(database: Database, clock: FakeClock) -> None:
    queue = SqlAlchemyOutboxQueue(database, clock, chat_rate=1)
    await put(database, clock, PRIVATE, [Reply("a"), Reply("b")])
    assert await claimed_chats(queue) == [PRIVATE]
    await put(database, clock, OTHER_PRIVATE, [Reply("c")])
    assert await claimed_chats(queue) == [OTHER_PRIVATE]


async def test_without_a_chat_rate_nothing_waits(database: Database, clock: FakeClock) -> None:
    queue = SqlAlchemyOutboxQueue(database, clock)
    await put(database, clock, PRIVATE, [Reply("a"), Reply("b")])
    assert await claimed_chats(queue) == [PRIVATE]
    assert await claimed_chats(queue) == [PRIVATE]
