"""Time as a dependency: the clock every part is given, the real one, and the one tests move by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""Where a part reads the time: called with no arguments, it returns the current time, timezone-aware."""

FAKE_CLOCK_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


class FakeClock:
    """A :data:`Clock` that stands still until a test moves it.

    Args:
        start: The time it shows until it is first moved.
    """

    def __init__(self, start: datetime = FAKE_CLOCK_START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta | None = None, /, **parts: float) -> None:
        """Move the clock forward by ``by`` and by ``parts`` (``timedelta``'s keywords: ``hours=25``…)."""
        self.now += (by or timedelta()) + timedelta(**parts)
