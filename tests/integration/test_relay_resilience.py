"""The relay under database trouble: a sent reply is recorded however long it takes, and claims outlive slow sends."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import asyncpg  # type: ignore[import-untyped]
import structlog
from sqlalchemy import select

from durabot.clock import FakeClock, utc_now
from durabot.storage.database import Database
from durabot.outbox import OutboxStatus
from durabot.storage.outbox_queue import SqlAlchemyOutboxQueue
from durabot.storage.tables import OutboxMessageRow
from durabot.transport.relay import OutboxRelay
from tests.conftest import ScratchDatabase
from tests.integration.relay_rig import queue_replies, relay_rig

CHAT = 4242


class RecordingFailsAtFirst(SqlAlchemyOutboxQueue):
    """The real queue, except that recording a delivery meets a database that is starting up ``failures`` times."""

    def __init__(self, database: Database, clock: FakeClock, failures: int) -> None:
        super().__init__(database, clock)
        self.failures = failures

    async def mark_sent(self, item_id: int) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
        await super().mark_sent(item_id)


async def statuses(database: Database) -> list[str]:
    async with database.engine.connect() as connection:
        return list((await connection.scalars(select(OutboxMessageRow.status).order_by(OutboxMessageRow.id))).all())


async def test_a_reply_whose_delivery_cannot_be_recorded_at_first_is_recorded_later_and_never_sent_again(
    test_db: ScratchDatabase, clock: FakeClock
) -> None:
    database = test_db.open()
    try:
        await queue_replies(database, CHAT, ["Step 1 of 6 · Nickname"], clock)
        queue = RecordingFailsAtFirst(database, clock, failures=3)
        async with relay_rig() as rig:
            relay = OutboxRelay(queue, rig.sender, clock)
            with structlog.testing.capture_logs() as logs:
                assert await asyncio.wait_for(relay.relay_once(), 60) == 1
            assert [entry["log_level"] for entry in logs if entry["event"] == "relay.mark_sent_failed"] == ["warning"] * 3
            assert await statuses(database) == [OutboxStatus.SENT]

            clock.advance(hours=1)  # long past any lease: a row left "sending" would be claimed again now
            assert await relay.relay_once() == 0
            assert await rig.delivered(CHAT) == ["Step 1 of 6 · Nickname"]
    finally:
        await database.dispose()


async def test_a_send_slower_than_the_lease_keeps_its_claim_so_no_other_relay_sends_it_too(
    test_db: ScratchDatabase,
) -> None:
    lease = timedelta(seconds=1)  # the send takes three leases, and stays within the Bot API client's 5 s read timeout
    database = test_db.open()
    try:
        await queue_replies(database, CHAT, ["the slow one", "the next one"], utc_now)
        async with relay_rig() as rig:
            await rig.sandbox.delay("sendMessage", seconds=3 * lease.total_seconds(), count=1)
            slow = OutboxRelay(SqlAlchemyOutboxQueue(database), rig.sender, lease=lease)
            other = OutboxRelay(SqlAlchemyOutboxQueue(database), rig.sender, lease=lease)
            sending = asyncio.create_task(slow.relay_once())
            while await statuses(database) != [OutboxStatus.SENDING, OutboxStatus.PENDING]:
                await asyncio.sleep(0.01)  # the slow relay has claimed the first reply
            while not sending.done():
                await other.relay_once()
                await asyncio.sleep(0.1)
            assert await sending == 1
            while await other.relay_once():
                pass
            assert await rig.delivered(CHAT) == ["the slow one", "the next one"]
    finally:
        await database.dispose()


async def test_a_relay_that_cannot_reach_the_database_warns_and_backs_off_instead_of_logging_tracebacks() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = Database(f"postgresql://postgres@127.0.0.1:{port}/nowhere")
    stop = asyncio.Event()
    try:
        async with relay_rig() as rig:
            relay = OutboxRelay(SqlAlchemyOutboxQueue(database), rig.sender, stop=stop)
            with structlog.testing.capture_logs() as logs:
                running = asyncio.create_task(relay.run())
                deadline = asyncio.get_running_loop().time() + 60  # a hang guard
                while len([e for e in logs if e["event"] == "relay.database_unavailable"]) < 2:
                    assert asyncio.get_running_loop().time() < deadline, logs
                    await asyncio.sleep(0.05)
                stop.set()
                await asyncio.wait_for(running, 30)
        unavailable = [entry for entry in logs if entry["event"] == "relay.database_unavailable"]
        assert {entry["log_level"] for entry in unavailable} == {"warning"}
        assert unavailable[1]["retry_in"] > 0 and "exc_info" not in unavailable[0]
        assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    finally:
        await database.dispose()
