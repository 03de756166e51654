"""The health page's step latency covers the last hour of this process's steps, not everything since it started."""

from __future__ import annotations

from durabot.console.metrics import Metrics
from durabot.engine.runner import Applied


class Ticks:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def test_only_the_last_hours_steps_count_and_failed_ones_not_at_all() -> None:
    ticks = Ticks()
    metrics = Metrics(monotonic=ticks)
    assert metrics.recent_latency() is None
    metrics.update_applied(Applied(1, "applied", (), seconds=2.0))  # slow, but soon an hour old
    ticks.now += 3_601
    for seconds in (0.01, 0.02, 0.03, 0.04):
        metrics.update_applied(Applied(2, "applied", (), seconds=seconds))
    metrics.update_applied(Applied(3, "failed", ()))
    assert metrics.recent_latency() == (0.02, 0.04, 4)
