"""Who engages the outage journal: only a process that was polling when the primary went away, after the grace period."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from durabot.bootstrap import build_registry
from durabot.journal.outage import OutageMonitor
from durabot.journal.replay import Replayer
from durabot.journal.routing import Route
from durabot.journal.store import Journal
from durabot.storage.database import Database
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from tests.conftest import free_port
from tests.recorder import Recorder

GRACE = 0.3


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    journal = Journal(tmp_path / "journal.sqlite3")
    await journal.open("away")
    try:
        yield journal
    finally:
        await journal.close()


def monitor_of(journal: Journal, route: Route, recorder: Recorder, clock: Ticks | None = None) -> OutageMonitor:
    away = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/away")  # nothing listens there: the primary is down
    replayer = Replayer(journal, SqlAlchemyUnitOfWorkFactory(away), build_registry(), timedelta(hours=1))
    return OutageMonitor(away, journal, route, replayer, GRACE, clock=clock or time.monotonic, observer=recorder)


async def run_for(monitor: OutageMonitor, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await task


async def run_ticking(monitor: OutageMonitor, clock: Ticks) -> None:
    """Run ``monitor`` for two seconds while its clock runs twice as fast, to see the grace period pass."""
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    for _ in range(40):
        clock.now += 0.1
        await asyncio.sleep(0.05)
    stop.set()
    await task


async def test_a_process_that_never_polled_does_not_journal(journal: Journal) -> None:
    route, recorder = Route(), Recorder()
    monitor = monitor_of(journal, route, recorder)
    with capture_logs() as logs:
        await run_for(monitor, GRACE + 1.5)
    assert not route.engaged and not monitor.engaged_event.is_set()
    assert not recorder.of("journal_changed")
    assert not [e for e in logs if e["event"] == "journal.engaged"]


async def test_the_polling_process_engages_the_journal_after_the_grace_period(journal: Journal) -> None:
    route, recorder = Route(), Recorder()
    monitor = monitor_of(journal, route, recorder)
    monitor.leadership_changed(polling=True)
    with capture_logs() as logs:
        await run_for(monitor, GRACE + 1.5)
    assert route.engaged and monitor.engaged_event.is_set()
    assert recorder.of("journal_changed") == [(True, 0)]
    [engaged] = [e for e in logs if e["event"] == "journal.engaged"]
    assert engaged["log_level"] == "warning" and "ConnectionRefusedError" in engaged["reason"]
    assert engaged["away_seconds"] >= GRACE


async def test_a_poller_that_lost_its_lease_with_the_primary_still_engages_it(journal: Journal) -> None:
    route, recorder, clock = Route(), Recorder(), Ticks()
    monitor = monitor_of(journal, route, recorder, clock)
    monitor.leadership_changed(polling=True)
    monitor.leadership_changed(polling=False)  # the lease check failed a moment before the first failed probe
    await run_ticking(monitor, clock)
    assert route.engaged


async def test_a_process_that_stopped_polling_long_before_the_outage_does_not_journal(journal: Journal) -> None:
    route, recorder, clock = Route(), Recorder(), Ticks()
    monitor = monitor_of(journal, route, recorder, clock)
    monitor.leadership_changed(polling=True)
    monitor.leadership_changed(polling=False)
    clock.now += 600  # another process has polled since
    await run_ticking(monitor, clock)
    assert not route.engaged
