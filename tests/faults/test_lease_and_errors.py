"""Against a real server that crashes or shuts down: the errors it gives are unavailable, and the poller lease moves on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest
import structlog
from sqlalchemy import text

from durabot.storage.availability import is_unavailable
from durabot.storage.database import Database
from durabot.storage.leader import LeaderLease
from tests.faults.conftest import Cluster

pytestmark = pytest.mark.faults


@pytest.fixture
async def two_processes(cluster: Cluster) -> AsyncIterator[tuple[Database, Database]]:
    """Two independent handles on the cluster, as two worker processes would hold them."""
    first, second = Database(cluster.url), Database(cluster.url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def test_a_server_that_is_shutting_down_answers_57p03_and_that_counts_as_unavailable(cluster: Cluster) -> None:
    session = await asyncpg.connect(cluster.url)  # a smart shutdown waits for this session to end
    database = Database(cluster.url)
    try:
        await asyncio.to_thread(cluster.begin_smart_shutdown)
        with pytest.raises(asyncpg.exceptions.CannotConnectNowError) as refused:
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert refused.value.sqlstate == "57P03"
        assert is_unavailable(refused.value)
    finally:
        await session.close()
        await database.dispose()


async def test_a_crash_loses_the_lease_and_a_standby_takes_it_once_the_database_is_back(
    cluster: Cluster, two_processes: tuple[Database, Database]
) -> None:
    leader, standby = LeaderLease(two_processes[0]), LeaderLease(two_processes[1], busy_retry_seconds=0.2)
    stop = asyncio.Event()
    assert await leader.acquire(stop)
    assert await leader.held()
    with structlog.testing.capture_logs() as logs:
        waiting = asyncio.create_task(standby.acquire(stop))
        await asyncio.to_thread(cluster.crash)

        assert not await leader.held(), "the lock died with the leader's connection"

        def failures() -> int:
            return len([entry for entry in logs if entry["event"] == "leader.acquire_failed"])

        deadline = asyncio.get_running_loop().time() + 60  # a hang guard
        while failures() < 2:
            assert not waiting.done(), "a standby keeps trying while the database is down"
            assert asyncio.get_running_loop().time() < deadline, logs
            await asyncio.sleep(0.05)
        await asyncio.to_thread(cluster.start)
        assert await asyncio.wait_for(waiting, 60)
    assert await standby.held()
    assert {entry["log_level"] for entry in logs if entry["event"] == "leader.acquire_failed"} == {"warning"}
    locks = await asyncio.to_thread(cluster.query, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
    assert locks == [(1,)]
    await standby.release()
