"""The outbox queue's contract — in order per chat, leases that expire, retries, dead letters — on the in-memory
fake, SQLite and PostgreSQL; and, on the databases, a claim that reads only the backlog and one relay per row."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, select, text
from sqlalchemy.engine import Connection

from durabot.clock import FakeClock
from durabot.outbox import OutboxItem, OutboxQueue, OutboxStatus
from durabot.replies import Reply
from durabot.storage.database import Database
from durabot.storage.outbox_queue import UNSENT_INDEX, SqlAlchemyOutboxQueue
from durabot.storage.tables import OutboxMessageRow
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from durabot.testing import InMemoryOutboxQueue
from tests.conftest import ScratchDatabase, migrated_database

LEASE = timedelta(seconds=60)


@dataclass
class Outbox:
    """A queue under test, and how to put messages into it and read a row back, whatever stores it."""

    queue: OutboxQueue
    database: Database | None = None
    clock: FakeClock | None = None

    async def put(self, chat_id: int, texts: list[str]) -> None:
        """Queue ``texts`` for the chat in one step's transaction."""
        if isinstance(self.queue, InMemoryOutboxQueue):
            self.queue.put(chat_id, *(Reply(t) for t in texts))
            return
        assert self.database is not None and self.clock is not None
        async with SqlAlchemyUnitOfWorkFactory(self.database, self.clock)() as uow:
            await uow.outbox.add(chat_id, [Reply(t) for t in texts], None, self.clock())
            await uow.commit()

    async def status_and_error(self, item_id: int) -> tuple[str, str | None]:
        if isinstance(self.queue, InMemoryOutboxQueue):
            row = self.queue.rows[item_id]
            return row.status, row.last_error
        assert self.database is not None
        async with self.database.engine.connect() as connection:
            query = select(OutboxMessageRow.status, OutboxMessageRow.last_error).where(OutboxMessageRow.id == item_id)
            status, error = (await connection.execute(query)).one()
        return status, error


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def outbox(request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Outbox]:
    """The queue on the in-memory fake, real SQLite and real PostgreSQL: one contract suite for all three."""
    if request.param == "memory":
        yield Outbox(InMemoryOutboxQueue(clock))
        return
    async with migrated_database(request.param, tmp_path) as database:
        yield Outbox(SqlAlchemyOutboxQueue(database, clock), database, clock)


@pytest.fixture
async def queued(outbox: Outbox) -> Outbox:
    """Three chats with three messages each, queued in one transaction per chat."""
    for chat in (1, 2, 3):
        await outbox.put(chat, [f"chat {chat} message {n}" for n in (1, 2, 3)])
    return outbox


def texts(items: list[OutboxItem]) -> list[str]:
    return [item.payload["text"] for item in items]


async def test_one_claim_takes_only_the_head_of_each_chat(queued: Outbox) -> None:
    queue = queued.queue
    first = await queue.claim(10, LEASE)
    assert texts(first) == ["chat 1 message 1", "chat 2 message 1", "chat 3 message 1"]
    assert await queue.claim(10, LEASE) == [], "a chat's next message waits for the one being sent"
    for item in first:
        await queue.mark_sent(item.id)
    second = await queue.claim(10, LEASE)
    assert texts(second) == ["chat 1 message 2", "chat 2 message 2", "chat 3 message 2"]
    assert [item.attempts for item in second] == [1, 1, 1]


async def test_a_claim_takes_the_oldest_heads_first_up_to_its_limit(queued: Outbox) -> None:
    assert texts(await queued.queue.claim(2, LEASE)) == ["chat 1 message 1", "chat 2 message 1"]
    assert texts(await queued.queue.claim(2, LEASE)) == ["chat 3 message 1"]


async def test_a_message_waiting_for_a_retry_holds_back_the_rest_of_its_chat(queued: Outbox, clock: FakeClock) -> None:
    queue = queued.queue
    chat_1, *others = await queue.claim(10, LEASE)
    await queue.retry_at(chat_1.id, clock() + timedelta(seconds=5), "429: retry after 5")
    for item in others:
        await queue.mark_sent(item.id)
    assert texts(await queue.claim(10, LEASE)) == ["chat 2 message 2", "chat 3 message 2"]
    clock.advance(seconds=5)
    again = await queue.claim(10, LEASE)
    assert texts(again) == ["chat 1 message 1"] and again[0].attempts == 2
    assert await queued.status_and_error(chat_1.id) == (OutboxStatus.SENDING, "429: retry after 5")


async def test_a_dead_letter_keeps_its_reason_and_lets_the_chat_move_on(queued: Outbox) -> None:
    queue = queued.queue
    head = (await queue.claim(1, LEASE))[0]
    await queue.dead_letter(head.id, "Forbidden: bot was blocked by the user")
    assert await queued.status_and_error(head.id) == (OutboxStatus.DEAD, "Forbidden: bot was blocked by the user")
    assert "chat 1 message 2" in texts(await queue.claim(10, LEASE))


async def test_a_sent_message_is_recorded_without_an_error(queued: Outbox) -> None:
    head = (await queued.queue.claim(1, LEASE))[0]
    await queued.queue.mark_sent(head.id)
    assert await queued.status_and_error(head.id) == (OutboxStatus.SENT, None)


async def test_an_expired_lease_is_claimed_again(queued: Outbox, clock: FakeClock) -> None:
    queue = queued.queue
    await queue.claim(10, LEASE)
    clock.advance(seconds=61)
    reclaimed = await queue.claim(10, LEASE)
    assert texts(reclaimed) == ["chat 1 message 1", "chat 2 message 1", "chat 3 message 1"]
    assert [item.attempts for item in reclaimed] == [2, 2, 2]


async def test_a_renewed_lease_keeps_the_claim(queued: Outbox, clock: FakeClock) -> None:
    queue = queued.queue
    claimed = await queue.claim(10, LEASE)
    clock.advance(seconds=50)
    await queue.extend_lease([claimed[0].id], LEASE)
    clock.advance(seconds=20)
    assert texts(await queue.claim(10, LEASE)) == ["chat 2 message 1", "chat 3 message 1"]


async def test_nothing_due_means_nothing_claimed(outbox: Outbox) -> None:
    assert await outbox.queue.claim(10, LEASE) == []


async def test_concurrent_relays_never_claim_the_same_row(test_db: ScratchDatabase, clock: FakeClock) -> None:
    database = test_db.open()
    processes = [test_db.open() for _ in range(4)]  # each with its own engine and pool
    try:
        for chat in range(40):
            await Outbox(SqlAlchemyOutboxQueue(database, clock), database, clock).put(chat, [f"{chat}:{n}" for n in range(5)])
        sent: list[str] = []

        async def relay(queue: SqlAlchemyOutboxQueue) -> None:
            while items := await queue.claim(7, LEASE):
                for item in items:
                    sent.append(item.payload["text"])
                    await queue.mark_sent(item.id)

        await asyncio.gather(*(relay(SqlAlchemyOutboxQueue(process, clock)) for process in processes))
        assert sorted(sent) == sorted(f"{chat}:{n}" for chat in range(40) for n in range(5))
        for chat in range(40):
            assert [text for text in sent if text.startswith(f"{chat}:")] == [f"{chat}:{n}" for n in range(5)]
        async with database.engine.connect() as connection:
            assert set((await connection.scalars(select(OutboxMessageRow.status))).all()) == {OutboxStatus.SENT}
    finally:
        for handle in (database, *processes):
            await handle.dispose()


def _unsent_index(connection: Connection) -> dict[str, Any]:
    [index] = [i for i in inspect(connection).get_indexes("outbox_messages") if i["name"] == UNSENT_INDEX]
    return dict(index)


async def test_the_unsent_index_holds_only_pending_and_sending_rows_by_chat_and_id(test_db: ScratchDatabase) -> None:
    database = test_db.open()
    try:
        async with database.engine.connect() as connection:
            index = await connection.run_sync(_unsent_index)
        assert index["column_names"][:2] == ["chat_id", "id"]
        where = index["dialect_options"].get(f"{database.dialect}_where")
        assert where is not None and "pending" in str(where) and "sending" in str(where) and "sent'" not in str(where)
    finally:
        await database.dispose()


SENT_ROWS = text(
    "INSERT INTO outbox_messages (chat_id, method, payload, status, attempts, next_attempt_at, created_at, sent_at) "
    "SELECT g % 10, 'send_message', CAST('{}' AS jsonb), 'sent', 1, now(), now(), now() FROM generate_series(1, 20000) AS g"
)


def rows_read(plan: dict[str, Any]) -> list[int]:
    """How many rows each node of a JSON ``EXPLAIN ANALYZE`` plan produced or filtered out, over all its loops."""
    own = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get("Actual Loops", 1)
    return [int(own), *(count for child in plan.get("Plans", []) for count in rows_read(child))]


async def test_a_claim_on_postgresql_reads_the_backlog_from_the_unsent_index_not_the_sent_rows(
    postgres_db: ScratchDatabase, clock: FakeClock
) -> None:
    database = postgres_db.open()
    try:
        async with database.engine.begin() as connection:
            await connection.execute(SENT_ROWS)  # 20,000 sent rows in the very chats that have a backlog
        outbox = Outbox(SqlAlchemyOutboxQueue(database, clock), database, clock)
        for chat in range(10):
            await outbox.put(chat, [f"{chat}:{n}" for n in range(3)])
        async with database.engine.connect() as connection:
            await (await connection.execution_options(isolation_level="AUTOCOMMIT")).execute(text("ANALYZE outbox_messages"))
        statements: list[tuple[str, Any]] = []
        event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2:4]))
        assert len(await outbox.queue.claim(50, LEASE)) == 10
        [(claim, parameters)] = [(sql, params) for sql, params in statements if sql.lstrip().upper().startswith("UPDATE")]
        async with database.engine.connect() as connection:
            explained = await connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {claim}", parameters)
            [[plan]] = explained.all()
            await connection.rollback()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        assert UNSENT_INDEX in json.dumps(plan)
        assert max(rows_read(plan[0]["Plan"])) <= 30, "no step of the claim reads more rows than the backlog holds"
    finally:
        await database.dispose()


async def test_a_claim_on_sqlite_reads_the_heads_from_the_unsent_index(tmp_path: Path, clock: FakeClock) -> None:
    async with migrated_database("sqlite", tmp_path) as database:
        statements: list[tuple[str, Any]] = []
        event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2:4]))
        await SqlAlchemyOutboxQueue(database, clock).claim(50, LEASE)
        [(claim, parameters)] = [(sql, params) for sql, params in statements if sql.lstrip().upper().startswith("UPDATE")]
        async with database.engine.connect() as connection:
            plan = [row[-1] for row in await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {claim}", parameters)]
        assert any(UNSENT_INDEX in step for step in plan), plan
        assert not any(step.startswith("SCAN outbox_messages") and "INDEX" not in step for step in plan), plan
