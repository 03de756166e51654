"""The relays of a bot in the database, on SQLite and PostgreSQL: live relays split the rate, a dead one ages out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from durabot.clock import FakeClock
from durabot.storage.database import Database
from durabot.storage.relay_workers import FORGET_AFTER, RelayWorkers
from durabot.storage.tables import RelayWorkerRow
from durabot.transport.rate_limits import RateLimits
from durabot.transport.rate_share import LIVE_FOR, RateShare
from tests.conftest import migrated_database

BOT, OTHER_BOT = 5550001, 5550002


@pytest.fixture
async def database(db_kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database(db_kind, tmp_path) as migrated:
        yield migrated


def relay(database: Database, clock: FakeClock, name: str, bot_id: int = BOT) -> tuple[RateShare, RateLimits]:
    """One relay of ``bot_id`` with the bot's overall rate of 30 a second, as bootstrap wires it."""
    limits = RateLimits(30, 1)
    return RateShare(RelayWorkers(database, bot_id, LIVE_FOR, worker_id=name, clock=clock), limits, 30), limits


async def worker_ids(database: Database) -> list[tuple[int, str]]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(select(RelayWorkerRow.bot_id, RelayWorkerRow.worker_id))
        return sorted((row.bot_id, row.worker_id) for row in rows)


async def test_two_live_relays_of_a_bot_each_take_half_its_rate_and_other_bots_do_not_count(
    database: Database, clock: FakeClock
) -> None:
    (first, first_limits), (second, second_limits) = relay(database, clock, "a"), relay(database, clock, "b")
    (elsewhere, elsewhere_limits) = relay(database, clock, "c", bot_id=OTHER_BOT)
    assert await first.refresh() == 30, "alone, for now"
    assert await second.refresh() == 15, "a relay that joins takes its share at once"
    assert await elsewhere.refresh() == 30
    assert await first.refresh() == 15, "the other follows at its next heartbeat"
    assert (first_limits.overall_per_second, second_limits.overall_per_second) == (15, 15)
    assert elsewhere_limits.overall_per_second == 30
    assert await worker_ids(database) == [(BOT, "a"), (BOT, "b"), (OTHER_BOT, "c")]


async def test_a_relay_that_stops_cleanly_hands_its_share_back_at_the_next_heartbeat(
    database: Database, clock: FakeClock
) -> None:
    (first, _), (second, _) = relay(database, clock, "a"), relay(database, clock, "b")
    await first.refresh()
    await second.refresh()
    await second.leave()
    assert await first.refresh() == 30
    assert await worker_ids(database) == [(BOT, "a")]


async def test_a_killed_relay_ages_out_after_missing_its_heartbeats_and_its_row_is_forgotten_later(
    database: Database, clock: FakeClock
) -> None:
    (survivor, _), (killed, _) = relay(database, clock, "survivor"), relay(database, clock, "killed")
    await survivor.refresh()
    await killed.refresh()
    clock.advance(LIVE_FOR - timedelta(seconds=1))
    assert await survivor.refresh() == 15, "a heartbeat or two late still counts"
    clock.advance(seconds=1)
    assert await survivor.refresh() == 30, "three heartbeats missed: it no longer counts"
    assert await worker_ids(database) == [(BOT, "killed"), (BOT, "survivor")], "kept for a while, for operators"
    clock.advance(FORGET_AFTER)
    await survivor.refresh()
    assert await worker_ids(database) == [(BOT, "survivor")]


async def test_a_relay_counted_out_while_it_was_away_registers_again_on_its_next_heartbeat(
    database: Database, clock: FakeClock
) -> None:
    (first, _), (away, _) = relay(database, clock, "a"), relay(database, clock, "away")
    await away.refresh()
    clock.advance(FORGET_AFTER + LIVE_FOR)
    await first.refresh()  # forgets the row of the relay that has been silent
    assert await worker_ids(database) == [(BOT, "a")]
    assert await away.refresh() == 15
    assert await RelayWorkers(database, BOT, LIVE_FOR, clock=clock).live() == 2
