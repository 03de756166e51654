"""The relay and the poller while the database crashes under them: nothing sent twice, no polling without the lease."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import structlog

from durabot.bootstrap import App, build_app
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.storage.database import Database
from durabot.storage.leader import LeaderLease
from durabot.storage.migrate import upgrade
from durabot.storage.outbox_queue import SqlAlchemyOutboxQueue
from durabot.transport.polling import Poller
from durabot.transport.relay import OutboxRelay
from tests.faults.conftest import Cluster
from tests.integration.relay_rig import queue_replies, relay_rig

pytestmark = pytest.mark.faults

CHAT = 7007
DOWN_SECONDS = 2.0


class CrashAfterSending(SqlAlchemyOutboxQueue):
    """The real queue on the cluster; the first time a delivery is to be recorded, the cluster crashes first.

    It comes back after :data:`DOWN_SECONDS`, so recording meets a dead connection, then refused ones.
    """

    def __init__(self, database: Database, clock: FakeClock, cluster: Cluster) -> None:
        super().__init__(database, clock)
        self._cluster = cluster
        self.restarted: asyncio.Task[None] | None = None

    async def mark_sent(self, item_id: int) -> None:
        if self.restarted is None:
            await asyncio.to_thread(self._cluster.crash)
            self.restarted = asyncio.create_task(asyncio.to_thread(self._cluster.restart_after, DOWN_SECONDS))
        await super().mark_sent(item_id)


@pytest.fixture
async def app(cluster: Cluster) -> AsyncIterator[App]:
    wired = build_app(Settings(database_url=cluster.url, sandbox_port=0))
    await upgrade(wired.database)
    yield wired
    await wired.close()


async def test_a_reply_sent_just_before_a_crash_is_recorded_once_the_database_is_back_and_not_sent_again(
    cluster: Cluster, app: App, clock: FakeClock
) -> None:
    await queue_replies(app.database, CHAT, ["Step 1 of 6 · Nickname"], clock)
    queue = CrashAfterSending(app.database, clock, cluster)
    async with relay_rig() as rig:
        relay = OutboxRelay(queue, rig.sender, clock)
        with structlog.testing.capture_logs() as logs:
            assert await asyncio.wait_for(relay.relay_once(), 120) == 1
        assert queue.restarted is not None
        await queue.restarted
        assert [entry for entry in logs if entry["event"] == "relay.mark_sent_failed"], "the database was down"
        clock.advance(hours=1)  # long past any lease: a row left "sending" would be claimed again now
        assert await relay.relay_once() == 0
        assert await rig.delivered(CHAT) == ["Step 1 of 6 · Nickname"]
    assert await asyncio.to_thread(cluster.query, "SELECT status FROM outbox_messages") == [("sent",)]


async def test_a_poller_whose_lease_dies_mid_poll_abandons_the_poll_at_once(cluster: Cluster, app: App) -> None:
    stop = asyncio.Event()
    lease = LeaderLease(app.database)
    assert await lease.acquire(stop)
    async with relay_rig() as rig:
        polling = asyncio.create_task(Poller(rig.bot, app.engine).run(stop, lease))

        async def calls_in_flight() -> list[dict[str, object]]:
            return [call for call in await rig.sandbox.calls("getUpdates") if call["status"] is None]

        deadline = asyncio.get_running_loop().time() + 60  # hang guards, not timings
        while not await calls_in_flight():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        with structlog.testing.capture_logs() as logs:
            await asyncio.to_thread(cluster.crash)
            await asyncio.wait_for(polling, 60)
        assert await calls_in_flight(), "the long poll was abandoned, not waited out"
        assert [entry["event"] for entry in logs if entry["event"].startswith("polling.")] == ["polling.lease_lost"]
    await lease.release()
