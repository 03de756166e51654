"""The flow funnel kept over time: funnel events summed in memory per day and added to ``flow_funnel_counts`` every 10 s."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date
from typing import cast

import structlog
from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from durabot.clock import Clock, utc_now
from durabot.engine.runner import Applied
from durabot.observe import BaseObserver
from durabot.storage.availability import describe
from durabot.storage.database import Database
from durabot.storage.tables import FlowFunnelCountRow
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.funnel")

FUNNEL = cast(Table, FlowFunnelCountRow.__table__)
FLUSH_SECONDS = 10.0
"""How often a worker adds what it counted to the table."""

Key = tuple[date, str, str, str]
"""``(day, flow, event, step)``: a row of ``flow_funnel_counts``."""


class FunnelRecorder(BaseObserver):
    """Counts each applied step's funnel events by UTC day, and adds the sums to ``flow_funnel_counts`` on :meth:`flush`.

    Args:
        clock: Where the day of an event is read.
    """

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._sums: Counter[Key] = Counter()

    def update_applied(self, applied: Applied) -> None:
        if not applied.flow_events:
            return
        day = self._clock().astimezone(UTC).date()
        for event in applied.flow_events:
            self._sums[(day, event.flow, event.kind, event.step)] += 1

    @property
    def pending(self) -> int:
        """Events counted and not written yet."""
        return sum(self._sums.values())

    async def flush(self, database: Database) -> bool:
        """Add the sums counted so far to the table, in one transaction; ``False`` (the sums kept for next time) if that failed.

        Never raises: a database that does not answer only delays the counts.
        """
        sums, self._sums = self._sums, Counter()
        if not sums:
            return True
        rows = [
            {"day": day, "flow": flow, "event": event, "step": step, "count": count}
            for (day, flow, event, step), count in sums.items()
        ]
        upsert = pg_insert(FUNNEL) if database.is_postgresql else sqlite_insert(FUNNEL)
        statement = upsert.values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=[FUNNEL.c.day, FUNNEL.c.flow, FUNNEL.c.event, FUNNEL.c.step],
            set_={"count": FUNNEL.c["count"] + statement.excluded["count"]},
        )
        try:
            async with database.transaction() as connection:
                await connection.execute(statement)
        except Exception as error:
            self._sums.update(sums)  # with whatever was counted meanwhile
            log.warning("funnel.flush_failed", events=sum(sums.values()), error=describe(error))
            return False
        return True

    async def keep_flushing(self, database: Database, stop: asyncio.Event) -> None:
        """Flush every :data:`FLUSH_SECONDS` until ``stop`` is set, and once more then; never raises."""
        while not stop.is_set():
            await wait_for_any(stop, timeout=FLUSH_SECONDS)
            await self.flush(database)


async def funnel_counts(database: Database, since: date) -> dict[str, Counter[tuple[str, str]]]:
    """Each flow's counts from ``since`` (a UTC day) on, by ``(event, step)``."""
    c = FUNNEL.c
    query = (
        select(c.flow, c.event, c.step, func.sum(c["count"]))
        .where(c.day >= since)
        .group_by(c.flow, c.event, c.step)
    )
    async with database.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    counts: dict[str, Counter[tuple[str, str]]] = {}
    for flow, event, step, total in rows:
        counts.setdefault(str(flow), Counter())[(str(event), str(step))] += int(total)
    return counts
