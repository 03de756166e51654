"""Prometheus metrics: counters and histograms fed by the observer seam, gauges read from the database.

Each worker exports its own counters; the gauges that describe the whole bot (backlogs, dead
letters, orphans) are read from the database, so every worker reports the same figures for them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import func, select

from durabot.clock import Clock, utc_now
from durabot.domain.cases import RECOVERED_BY_GUARD_TITLE, RECOVERED_BY_REPAIR_TITLE
from durabot.engine.runner import Applied
from durabot.observe import BaseObserver
from durabot.outbox import UNFINISHED_VALUES, OutboxStatus
from durabot.storage.availability import describe
from durabot.storage.case_repositories import CASES, PROGRESS
from durabot.storage.database import Database
from durabot.storage.inbox import UPDATES
from durabot.storage.repositories import OUTBOX
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.metrics")

STEP_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
"""Step latency buckets, in seconds."""

RECENT_SECONDS = 3600.0
"""How far back :meth:`Metrics.recent_latency` looks."""

RECENT_SAMPLES = 50_000
"""The most step latencies kept for it (the oldest go first)."""

REFRESH_SECONDS = 5.0
"""How often the gauges read from the database are refreshed."""



class Metrics(BaseObserver):
    """Every figure ``/metrics`` exports, in a registry of its own.

    Args:
        registry: Where the figures are registered (a fresh one unless given).
    """

    def __init__(self, registry: CollectorRegistry | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter("durabot_updates_received", "Updates stored that were not seen before", registry=r)
        self.outcomes = Counter(
            "durabot_updates", "Updates that reached an outcome, by outcome (applied, failed, ignored)", ["outcome"], registry=r
        )
        self.step_seconds = Histogram(
            "durabot_step_seconds", "Time from taking an update to committing its step, by flow", ["flow"],
            buckets=STEP_BUCKETS, registry=r,
        )
        self.flow_events = Counter(
            "durabot_flow_events",
            "Conversations started, steps reached, conversations completed, cancelled or found expired, by flow",
            ["flow", "event", "step"], registry=r,
        )
        self.replies = Counter(
            "durabot_replies", "Outbox messages by what became of a send: sent, retried, dead_lettered", ["result", "method"],
            registry=r,
        )
        self.polling = Gauge("durabot_polling", "1 while this worker polls Telegram", registry=r)
        self.outage_mode = Gauge("durabot_outage_mode", "1 while steps go to the outage journal", registry=r)
        self.journal_depth = Gauge("durabot_journal_depth", "Updates in the outage journal waiting to be replayed", registry=r)
        self.database_up = Gauge("durabot_database_up", "1 if the database answered the last refresh", registry=r)
        self.inbox_backlog = Gauge("durabot_inbox_backlog", "Updates stored and not applied yet", registry=r)
        self.inbox_oldest = Gauge("durabot_inbox_oldest_seconds", "Age of the oldest update not applied yet", registry=r)
        self.outbox_backlog = Gauge("durabot_outbox_backlog", "Replies waiting to be sent", registry=r)
        self.outbox_oldest = Gauge("durabot_outbox_oldest_seconds", "Age of the oldest reply waiting to be sent", registry=r)
        self.dead_letters = Gauge("durabot_outbox_dead_letters", "Replies given up on", registry=r)
        self.orphans = Gauge("durabot_orphans", "Intake progress rows without their case (must be 0)", registry=r)
        self.recovered = Gauge(
            "durabot_cases_recovered", "Cases re-created for orphaned intake progress, by what re-created them", ["by"],
            registry=r,
        )
        self._recent: deque[tuple[float, float]] = deque(maxlen=RECENT_SAMPLES)
        self._monotonic = monotonic
        self.outcomes.labels("applied")
        self.outcomes.labels("failed")
        self.outcomes.labels("ignored")

    # -- the observer seam ---------------------------------------------------------------

    def updates_stored(self, new: int, waiting: int) -> None:
        self.received.inc(new)

    def update_applied(self, applied: Applied) -> None:
        self.outcomes.labels(applied.outcome).inc()
        if applied.outcome == "applied":
            self.step_seconds.labels(applied.flow or "none").observe(applied.seconds)
            self._recent.append((self._monotonic(), applied.seconds))
        for event in applied.flow_events:
            self.flow_events.labels(event.flow, event.kind, event.step).inc()

    def updates_ignored(self, count: int) -> None:
        self.outcomes.labels("ignored").inc(count)

    def message_sent(self, method: str) -> None:
        self.replies.labels("sent", method).inc()

    def send_failed(self, method: str, gave_up: bool) -> None:
        self.replies.labels("dead_lettered" if gave_up else "retried", method).inc()

    def leadership_changed(self, polling: bool) -> None:
        self.polling.set(1 if polling else 0)

    def journal_changed(self, engaged: bool, depth: int) -> None:
        self.outage_mode.set(1 if engaged else 0)
        self.journal_depth.set(depth)

    def recent_latency(self, seconds: float = RECENT_SECONDS) -> tuple[float, float, int] | None:
        """The median and 95th percentile (nearest rank) of this process's step latencies of the last ``seconds``, and how many."""
        since = self._monotonic() - seconds
        latest = sorted(latency for at, latency in self._recent if at >= since)
        if not latest:
            return None
        def rank(q: float) -> float:
            return latest[min(len(latest) - 1, max(0, math.ceil(q * len(latest)) - 1))]
        return rank(0.5), rank(0.95), len(latest)

    # -- read from the database ------------------------------------------------------------

    async def refresh(self, database: Database, now: datetime) -> None:
        """Read the backlogs, dead letters and orphans from ``database``; a database that does not answer is down."""
        try:
            async with database.engine.connect() as connection:
                pending = (
                    await connection.execute(
                        select(func.count(), func.min(UPDATES.c.received_at)).where(UPDATES.c.processed_at.is_(None))
                    )
                ).one()
                unsent = (
                    await connection.execute(
                        select(func.count(), func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status.in_(UNFINISHED_VALUES))
                    )
                ).one()
                dead = await connection.scalar(
                    select(func.count()).select_from(OUTBOX).where(OUTBOX.c.status == OutboxStatus.DEAD.value)
                )
                orphans = await connection.scalar(
                    select(func.count()).select_from(PROGRESS).where(
                        ~select(CASES.c.case_id).where(CASES.c.case_id == PROGRESS.c.case_id).exists()
                    )
                )
                titled = await connection.execute(
                    select(CASES.c.title, func.count())
                    .where(CASES.c.title.in_((RECOVERED_BY_GUARD_TITLE, RECOVERED_BY_REPAIR_TITLE)))
                    .group_by(CASES.c.title)
                )
                recovered: dict[str, int] = {str(title): int(count) for title, count in titled.all()}
        except Exception as error:
            self.database_up.set(0)
            log.debug("metrics.refresh_failed", error=describe(error))
            return
        self.database_up.set(1)
        self.inbox_backlog.set(pending[0])
        self.inbox_oldest.set(_age(pending[1], now))
        self.outbox_backlog.set(unsent[0])
        self.outbox_oldest.set(_age(unsent[1], now))
        self.dead_letters.set(dead or 0)
        self.orphans.set(orphans or 0)
        self.recovered.labels("guard").set(recovered.get(RECOVERED_BY_GUARD_TITLE, 0))
        self.recovered.labels("repair").set(recovered.get(RECOVERED_BY_REPAIR_TITLE, 0))

    async def keep_fresh(self, database: Database, stop: asyncio.Event, clock: Clock = utc_now) -> None:
        """Refresh the database's gauges every :data:`REFRESH_SECONDS` until ``stop`` is set."""
        while not stop.is_set():
            started = time.perf_counter()
            await self.refresh(database, clock())
            log.debug("metrics.refreshed", ms=round((time.perf_counter() - started) * 1000, 1))
            await wait_for_any(stop, timeout=REFRESH_SECONDS)


def _age(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0
