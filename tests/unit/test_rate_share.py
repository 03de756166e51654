"""A relay's share of its bot's send rate: the overall limiter takes a new rate while in use; live relays split the rate."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from durabot.outbox import OutboxUnavailableError
from durabot.transport.rate_limits import AdjustableRate, RateLimits
from durabot.transport.rate_share import RateShare, share

HANG_GUARD = 10.0


class Ticks:
    """A monotonic clock moved by hand, in seconds."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Registry:
    """An in-memory registry of the bot's relays: the test says how many others are live."""

    def __init__(self) -> None:
        self.others = 0
        self.registered = False
        self.heartbeats = 0
        self.failing = False

    async def heartbeat(self) -> int:
        if self.failing:
            raise OutboxUnavailableError("ConnectionRefusedError: connect call failed")
        self.registered = True
        self.heartbeats += 1
        return self.others + 1

    async def unregister(self) -> None:
        self.registered = False


def test_a_burst_of_one_seconds_worth_fits_then_each_send_waits_for_its_slot() -> None:
    ticks = Ticks()
    rate = AdjustableRate(4, now=ticks)
    for _ in range(4):
        assert rate.delay() == 0
        rate.take()
    assert rate.delay() == pytest.approx(0.25)
    ticks.now += 0.25
    assert rate.delay() == 0


def test_a_new_rate_applies_from_then_on_to_what_is_still_queued() -> None:
    ticks = Ticks()
    rate = AdjustableRate(30, now=ticks)
    for _ in range(30):
        rate.take()
    ticks.now += 0.5  # 15 sends drained at the old rate
    rate.set_rate(15)
    assert (rate.per_second, rate.burst) == (15, 15)
    assert rate.delay() == pytest.approx(1 / 15)  # 15 queued, a burst of 15: the next waits one slot at the new rate
    ticks.now += 1
    assert rate.delay() == 0


def test_a_rate_below_one_a_second_still_lets_one_send_through() -> None:
    ticks = Ticks()
    rate = AdjustableRate(0.5, now=ticks)
    assert rate.delay() == 0
    rate.take()
    assert rate.delay() == pytest.approx(2)


@pytest.mark.parametrize("bad", [0, -1])
def test_a_rate_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        AdjustableRate(bad)
    with pytest.raises(ValueError):
        AdjustableRate(1).set_rate(bad)


async def test_a_send_waiting_on_a_slow_rate_goes_as_soon_as_the_rate_is_raised() -> None:
    rate = AdjustableRate(0.001)  # one send, then one every 1,000 s
    async with rate:
        pass
    waiting = asyncio.create_task(rate.__aenter__())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    rate.set_rate(1_000)
    await asyncio.wait_for(waiting, HANG_GUARD)


def test_the_overall_limit_can_be_changed_lifted_and_set_again() -> None:
    limits = RateLimits(30, None)
    limiter = limits.overall
    limits.set_overall(10)
    assert limits.overall is limiter and limits.overall_per_second == 10
    limits.set_overall(None)
    assert limits.overall_per_second is None
    limits.set_overall(5)
    assert isinstance(limits.overall, AdjustableRate) and limits.overall_per_second == 5


def test_the_share_is_the_bots_rate_split_evenly_and_no_limit_stays_no_limit() -> None:
    assert share(30, 1) == 30
    assert share(30, 2) == 15
    assert share(30, 0) == 30, "a relay always counts itself"
    assert share(None, 3) is None


async def test_each_heartbeat_sets_the_relays_share_of_the_live_relays() -> None:
    registry, limits = Registry(), RateLimits(30, 1)
    rate_share = RateShare(registry, limits, 30)
    assert await rate_share.refresh() == 30
    registry.others = 1
    with capture_logs() as logs:
        assert await rate_share.refresh() == 15
    assert limits.overall_per_second == 15 and rate_share.live_relays == 2
    assert [(e["event"], e["live_relays"], e["per_second"]) for e in logs] == [("relay.share_changed", 2, 15)]
    registry.others = 0  # the other stopped, or aged out
    assert await rate_share.refresh() == 30


async def test_without_an_overall_limit_the_relay_still_registers_and_sends_unlimited() -> None:
    registry, limits = Registry(), RateLimits(None, 1)
    registry.others = 2
    assert await RateShare(registry, limits, None).refresh() is None
    assert registry.registered and limits.overall_per_second is None


async def test_run_heartbeats_until_stopped_then_unregisters() -> None:
    registry, stop = Registry(), asyncio.Event()
    running = asyncio.create_task(RateShare(registry, RateLimits(30, 1), 30, heartbeat_seconds=0.01).run(stop))
    async with asyncio.timeout(HANG_GUARD):
        while registry.heartbeats < 3:
            await asyncio.sleep(0.01)
    assert registry.registered
    stop.set()
    await asyncio.wait_for(running, HANG_GUARD)
    assert not registry.registered


async def test_a_failed_heartbeat_is_a_warning_and_keeps_the_share_it_had() -> None:
    registry, limits, stop = Registry(), RateLimits(30, 1), asyncio.Event()
    registry.others = 2
    rate_share = RateShare(registry, limits, 30, heartbeat_seconds=0.01)
    await rate_share.refresh()
    registry.failing = True
    with capture_logs() as logs:
        running = asyncio.create_task(rate_share.run(stop))
        async with asyncio.timeout(HANG_GUARD):
            while not [e for e in logs if e["event"] == "relay.heartbeat_database_unavailable"]:
                await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(running, HANG_GUARD)
    assert limits.overall_per_second == 10
    failed = [e for e in logs if e["event"] == "relay.heartbeat_database_unavailable"]
    assert failed[0]["log_level"] == "warning" and "exc_info" not in failed[0]
    assert "connect call failed" in failed[0]["error"]
