"""The fake clock: it stands still until a test moves it, by a timedelta, by keywords, or both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from durabot.clock import FakeClock, utc_now


def test_a_fake_clock_shows_the_same_time_until_it_is_moved() -> None:
    clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    assert clock() == clock() == clock.now == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_advance_adds_a_timedelta_and_timedelta_keywords() -> None:
    clock = FakeClock()
    start = clock()
    clock.advance(hours=24, seconds=1)
    clock.advance(timedelta(minutes=1))
    clock.advance(timedelta(days=1), minutes=1)
    assert clock() - start == timedelta(days=2, minutes=2, seconds=1)


def test_the_real_clock_is_timezone_aware_utc() -> None:
    assert utc_now().tzinfo is UTC
