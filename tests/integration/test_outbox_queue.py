"""The relay's claims on the outbox: in order per chat, one relay per row, leases that expire — on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from durabot.replies import Reply
from durabot.storage.outbox_queue import DEAD, SENT, OutboxItem, SqlAlchemyOutboxQueue
from durabot.storage.tables import OutboxMessageRow
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from tests.conftest import Clock, ScratchDatabase
from tests.integration.conftest import Harness

LEASE = timedelta(seconds=60)


@pytest.fixture
async def queued(test_db: ScratchDatabase, clock: Clock) -> AsyncIterator[Harness]:
    """Three chats with three messages each, queued in one transaction per chat."""
    harness = Harness(test_db, clock)
    factory: SqlAlchemyUnitOfWorkFactory = harness.factory
    for chat in (1, 2, 3):
        async with factory() as uow:
            await uow.outbox.add(chat, [Reply(f"chat {chat} message {n}") for n in (1, 2, 3)], None, clock())
            await uow.commit()
    yield harness
    await harness.close()


def texts(items: list[OutboxItem]) -> list[str]:
    return [item.payload["text"] for item in items]


async def test_one_claim_takes_only_the_head_of_each_chat(queued: Harness, clock: Clock) -> None:
    queue = SqlAlchemyOutboxQueue(queued.database, clock)
    first = await queue.claim(10, LEASE)
    assert texts(first) == ["chat 1 message 1", "chat 2 message 1", "chat 3 message 1"]
    assert await queue.claim(10, LEASE) == [], "a chat's next message waits for the one being sent"
    for item in first:
        await queue.mark_sent(item.id)
    second = await queue.claim(10, LEASE)
    assert texts(second) == ["chat 1 message 2", "chat 2 message 2", "chat 3 message 2"]
    assert [item.attempts for item in second] == [1, 1, 1]


async def test_a_message_waiting_for_a_retry_holds_back_the_rest_of_its_chat(queued: Harness, clock: Clock) -> None:
    queue = SqlAlchemyOutboxQueue(queued.database, clock)
    chat_1, *others = await queue.claim(10, LEASE)
    await queue.retry_at(chat_1.id, clock() + timedelta(seconds=5), "429: retry after 5")
    for item in others:
        await queue.mark_sent(item.id)
    assert texts(await queue.claim(10, LEASE)) == ["chat 2 message 2", "chat 3 message 2"]
    clock.advance(seconds=5)
    again = await queue.claim(10, LEASE)
    assert texts(again) == ["chat 1 message 1"] and again[0].attempts == 2


async def test_a_dead_letter_keeps_its_reason_and_lets_the_chat_move_on(queued: Harness, clock: Clock) -> None:
    queue = SqlAlchemyOutboxQueue(queued.database, clock)
    head = (await queue.claim(1, LEASE))[0]
    await queue.dead_letter(head.id, "Forbidden: bot was blocked by the user")
    rows = {row.id: row for row in await queued.rows(OutboxMessageRow)}
    assert (rows[head.id].status, rows[head.id].last_error) == (DEAD, "Forbidden: bot was blocked by the user")
    assert "chat 1 message 2" in texts(await queue.claim(10, LEASE))


async def test_an_expired_lease_is_claimed_again(queued: Harness, clock: Clock) -> None:
    queue = SqlAlchemyOutboxQueue(queued.database, clock)
    await queue.claim(10, LEASE)
    clock.advance(seconds=61)
    reclaimed = await queue.claim(10, LEASE)
    assert texts(reclaimed) == ["chat 1 message 1", "chat 2 message 1", "chat 3 message 1"]
    assert [item.attempts for item in reclaimed] == [2, 2, 2]


async def test_concurrent_relays_never_claim_the_same_row(test_db: ScratchDatabase, clock: Clock) -> None:
    harness = Harness(test_db, clock)
    try:
        for chat in range(40):
            async with harness.factory() as uow:
                await uow.outbox.add(chat, [Reply(f"{chat}:{n}") for n in range(5)], None, clock())
                await uow.commit()
        processes = [Harness(test_db, clock) for _ in range(4)]  # each with its own engine and pool
        relays = [SqlAlchemyOutboxQueue(process.database, clock) for process in processes]
        sent: list[str] = []

        async def relay(queue: SqlAlchemyOutboxQueue) -> None:
            while items := await queue.claim(7, LEASE):
                for item in items:
                    sent.append(item.payload["text"])
                    await queue.mark_sent(item.id)

        await asyncio.gather(*(relay(queue) for queue in relays))
        assert sorted(sent) == sorted(f"{chat}:{n}" for chat in range(40) for n in range(5))
        for chat in range(40):
            assert [text for text in sent if text.startswith(f"{chat}:")] == [f"{chat}:{n}" for n in range(5)]
        statuses = {row.status for row in await harness.rows(OutboxMessageRow)}
        assert statuses == {SENT}
        for process in processes:
            await process.close()
    finally:
        await harness.close()


async def test_nothing_due_means_nothing_claimed(test_db: ScratchDatabase, clock: Clock) -> None:
    harness = Harness(test_db, clock)
    try:
        assert await SqlAlchemyOutboxQueue(harness.database, clock).claim(10, LEASE) == []
    finally:
        await harness.close()
