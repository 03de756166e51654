"""The in-process engine: complete add-machine conversations through ``Engine.handle`` on SQLite and PostgreSQL.

Each of N workers drives one chat at a time through a whole conversation (the command and six
answers) and then starts another in a new chat, until the run's time is up: "8 chats" means
eight conversations in flight at once. Every ``Engine.handle`` is one step; its latency is the
call's duration, its CPU is this process's CPU time over the run divided by the steps (the
aiosqlite thread included; the PostgreSQL server's own CPU not). SQLAlchemy's connection events
count the statements and transactions each step costs.

Run alone with ``.venv/bin/python bench/engine_throughput.py [seconds]``; ``make bench`` runs
it interleaved with the raw ceilings (``bench/suite.py``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import event, text

from common import ANSWERS, POSTGRES_URL, Ids, Run, throwaway_schema
from durabot.bootstrap import build_engine
from durabot.config import Settings
from durabot.engine.events import Event
from durabot.engine.runner import Engine
from durabot.storage.database import Database
from durabot.storage.migrate import upgrade
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory

STORED_IDS_FROM = 10**12
"""Chat and user ids of the conversations stored beforehand: far from the benchmark's own chats."""

POSTGRES_PRELOAD = text(
    """
    INSERT INTO conversation_states (user_id, chat_id, conversation_type, current_step, state_data,
                                     started_at, updated_at, expires_at, version, flow_version)
    SELECT CAST(:base AS bigint) + g, CAST(:base AS bigint) + g, 'add_machine', 'add_machine:serial_number',
           jsonb_build_object('answers', jsonb_build_object('nickname', 'Machine ' || g, 'manufacturer', 'Haas',
                                                            'model_number', 'VF-2'),
                              'order', jsonb_build_array('nickname', 'manufacturer', 'model_number')),
           now(), now(), now() + interval '30 days', 4, 1
    FROM generate_series(1, CAST(:count AS integer)) AS g
    """
)
SQLITE_PRELOAD = text(
    """
    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :count)
    INSERT INTO conversation_states (user_id, chat_id, conversation_type, current_step, state_data,
                                     started_at, updated_at, expires_at, version, flow_version)
    SELECT :base + n, :base + n, 'add_machine', 'add_machine:serial_number',
           json_object('answers', json_object('nickname', 'Machine ' || n, 'manufacturer', 'Haas',
                                              'model_number', 'VF-2'),
                       'order', json_array('nickname', 'manufacturer', 'model_number')),
           :now, :now, :later, 4, 1
    FROM g
    """
)


async def store_conversations(database: Database, count: int) -> float:
    """Insert ``count`` half-finished add-machine conversations in one statement; returns the seconds it took."""
    started = time.perf_counter()
    if count <= 0:
        return 0.0
    async with database.engine.begin() as connection:
        if database.is_postgresql:
            await connection.execute(POSTGRES_PRELOAD, {"base": STORED_IDS_FROM, "count": count})
        else:
            now = datetime.now(UTC).replace(tzinfo=None)
            later = now + timedelta(days=30)
            stamps = {"now": now.isoformat(sep=" "), "later": later.isoformat(sep=" ")}
            await connection.execute(SQLITE_PRELOAD, {"base": STORED_IDS_FROM, "count": count, **stamps})
    async with database.engine.begin() as connection:
        await connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


TRANSACTION_CONTROL = ("BEGIN;", "COMMIT;", "ROLLBACK;")


class StatementCounter:
    """Counts what is sent on an engine: statements, and transactions begun, committed and rolled back.

    SQLAlchemy's events see its own statements; on PostgreSQL the step's own statements go through
    asyncpg directly (``storage/pg_step.py``), so asyncpg's query logger counts those.
    """

    def __init__(self, database: Database) -> None:
        self.counts: Counter[str] = Counter()
        sync_engine = database.engine.sync_engine
        for name in ("before_cursor_execute", "begin", "commit", "rollback"):
            event.listen(sync_engine, name, self._counter(name))
        event.listen(sync_engine, "connect", self._watch_driver)

    def _watch_driver(self, dbapi_connection: Any, _record: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if hasattr(driver, "add_query_logger"):
            driver.add_query_logger(self._count_driver_statement)

    def _count_driver_statement(self, record: Any) -> None:
        if record.query not in TRANSACTION_CONTROL:  # BEGIN and COMMIT are counted by SQLAlchemy's events
            self.counts["driver_statements"] += 1

    def _counter(self, name: str) -> Any:
        def count(*_args: Any, **_kwargs: Any) -> None:
            self.counts[name] += 1

        return count

    def snapshot(self) -> dict[str, int]:
        """The totals so far, under short names."""
        counts = self.counts
        return {
            "statements": counts["before_cursor_execute"] + counts["driver_statements"],
            "begins": counts["begin"],
            "commits": counts["commit"],
            "rollbacks": counts["rollback"],
        }


def round_trips(counts: dict[str, int]) -> int:
    """Round trips to the server as SQLAlchemy reports them: statements plus BEGIN, COMMIT and ROLLBACK."""
    return counts.get("statements", 0) + counts.get("begins", 0) + counts.get("commits", 0) + counts.get("rollbacks", 0)


class EngineTarget:
    """One database with durabot's engine over it, built as the service builds it, kept open across rounds.

    Args:
        label: How the figures name it ("postgresql", "sqlite, 1M stored", …).
        database: The database to migrate and run on.
    """

    def __init__(self, label: str, database: Database) -> None:
        self.label = label
        self.database = database
        self.counter = StatementCounter(database)
        self.engine: Engine | None = None
        self.conversations = 0

    async def open(self, stored: int, ids: Ids) -> float:
        """Migrate, store ``stored`` conversations beforehand, build the engine and warm it with one conversation.

        Returns the seconds the stored conversations took to insert.
        """
        await upgrade(self.database)
        seconds = await store_conversations(self.database, stored)
        self.engine = build_engine(SqlAlchemyUnitOfWorkFactory(self.database), Settings())
        await self.run(1, 0.0, ids)
        return seconds

    async def run(self, chats: int, seconds: float, ids: Ids) -> Run:
        """Drive ``chats`` conversations at once for ``seconds`` (each finishes the conversation in hand)."""
        engine = self.engine
        assert engine is not None, "open() first"
        deadline = time.perf_counter() + seconds
        latencies: list[float] = []

        async def worker() -> None:
            while True:
                chat = ids.chat()
                for answer in ANSWERS:
                    started = time.perf_counter()
                    await engine.handle(Event.message(ids.update(), chat, chat, answer))
                    latencies.append(time.perf_counter() - started)
                self.conversations += 1
                if time.perf_counter() >= deadline:
                    return

        before = self.counter.snapshot()
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(chats)))
        run = Run(len(latencies), time.perf_counter() - started, time.process_time() - cpu, latencies)
        run.counts = {name: total - before[name] for name, total in self.counter.snapshot().items()}
        return run

    async def machines_saved(self) -> int:
        """How many machines the conversations saved (one per complete conversation, if all went as planned)."""
        async with self.database.engine.connect() as connection:
            return int((await connection.execute(text("SELECT count(*) FROM user_machines"))).scalar_one())

    async def close(self) -> None:
        """Release the connections."""
        await self.database.dispose()


def postgres_database(schema: str, url: str = POSTGRES_URL) -> Database:
    """durabot's ``Database`` on the shared server, its tables in ``schema``."""
    return Database(url, connect_args={"server_settings": {"search_path": schema}})


def describe(label: str, run: Run) -> str:
    """One line of figures."""
    ordered = sorted(run.latencies)
    p50 = ordered[len(ordered) // 2] * 1000 if ordered else 0.0
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else 0.0
    return (
        f"{label:>24}: {run.rate:6.0f} steps/s, p50 {p50:5.1f} ms, p99 {p99:6.1f} ms, "
        f"CPU {run.cpu_ms_per_operation:4.2f} ms/step, {round_trips(run.counts) / max(run.operations, 1):4.1f} round trips/step"
    )


async def main(seconds: float) -> None:
    """Print the engine's figures at 1 and 8 chats on both databases, once, without the ceilings."""
    ids = Ids()
    with tempfile.TemporaryDirectory(prefix="durabot-bench-") as folder:
        sqlite = EngineTarget("sqlite", Database(f"sqlite:///{folder}/engine.sqlite3"))
        await sqlite.open(0, ids)
        for chats in (1, 8):
            print(describe(f"sqlite, {chats} chats", await sqlite.run(chats, seconds, ids)))
        await sqlite.close()
    try:
        async with throwaway_schema("durabot_bench_engine") as schema:
            postgres = EngineTarget("postgresql", postgres_database(schema))
            try:
                await postgres.open(0, ids)
                for chats in (1, 8):
                    print(describe(f"postgresql, {chats} chats", await postgres.run(chats, seconds, ids)))
            finally:
                await postgres.close()
    except OSError as error:
        print(f"postgresql: skipped, server unreachable ({error})")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0))
