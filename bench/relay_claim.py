"""The relay's claim at a large backlog: 1M stored outbox rows, 10,000 of them unsent across 2,000 chats.

The sent rows belong to 100,000 chats, the backlog's chats among them. Each round claims a batch
(as the relay does: at most one row per chat, 50 rows), then, untimed, marks the batch sent and
queues as many new replies to the same chats, so the backlog keeps its size. Only
``SqlAlchemyOutboxQueue.claim`` is timed: one transaction, one statement. After the timed claims,
``EXPLAIN ANALYZE`` of one more (rolled back) shows which indexes it reads (``EXPLAIN QUERY PLAN``
on SQLite). SQLite gets the full 1M rows too: a recursive CTE builds them in seconds.

PostgreSQL runs in a throwaway schema of the shared test server; SQLite in a temporary file.
Run alone with ``.venv/bin/python bench/relay_claim.py [--claims N] [--stored N] [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, event, text
from sqlalchemy.ext.asyncio import AsyncConnection

from common import POSTGRES_URL, percentile, throwaway_schema
from durabot.storage.database import Database
from durabot.storage.migrate import upgrade
from durabot.storage.outbox_queue import SqlAlchemyOutboxQueue
from durabot.storage.tables import UtcDateTime

LEASE = timedelta(seconds=10)
BATCH = 50
"""Rows per claim, as the relay asks for."""
STORED_CHATS = 100_000
"""Chats the sent rows are spread over (ids from 1); the backlog's chats are the first of them."""

_stamp = bindparam("at", type_=UtcDateTime())
PAYLOAD = '{"text": "Step 1 of 6 · Nickname", "buttons": []}'
POSTGRES_ROWS = text(
    """
    INSERT INTO outbox_messages (chat_id, method, payload, status, attempts, next_attempt_at, created_at, sent_at)
    SELECT CAST(:first_chat AS bigint) + g % CAST(:chats AS bigint), 'send_message', CAST(:payload AS jsonb),
           CAST(:status AS varchar), 1, :at, :at, CASE WHEN :status = 'sent' THEN :at END
    FROM generate_series(0, CAST(:count AS integer) - 1) AS g
    """
).bindparams(_stamp)
SQLITE_ROWS = text(
    """
    WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < :count - 1)
    INSERT INTO outbox_messages (chat_id, method, payload, status, attempts, next_attempt_at, created_at, sent_at)
    SELECT :first_chat + n % :chats, 'send_message', :payload, :status, 1, :at, :at,
           CASE WHEN :status = 'sent' THEN :at END
    FROM g
    """
).bindparams(_stamp)
FINISH_CLAIMED = (
    text("UPDATE outbox_messages SET status = 'sent', sent_at = :at WHERE status = 'sending'").bindparams(_stamp)
)
PLAN_GIST = re.compile(r"->|^\S|Heap Fetches|Execution Time")
"""The lines of a PostgreSQL plan that say how rows are found, joined, sorted and locked, and how long it took."""


@dataclass
class ClaimFigures:
    """What one database measured."""

    database: str
    stored: int
    unsent: int
    chats: int
    build_seconds: float
    latencies: list[float]
    plan: list[str]

    def lines(self) -> list[str]:
        """The figures as printed."""
        median = statistics.median(self.latencies) * 1000
        p99 = percentile(self.latencies, 0.99) * 1000
        head = (
            f"{self.database}: {len(self.latencies)} claims of {BATCH} at a {self.unsent:,}-row backlog over {self.chats:,} chats, "
            f"{self.stored:,} rows stored (built in {self.build_seconds:.0f} s): "
            f"median {median:.2f} ms, p99 {p99:.2f} ms, max {max(self.latencies) * 1000:.2f} ms"
        )
        return [head, *(f"    plan: {line}" for line in self.plan)]


async def insert_rows(connection: AsyncConnection, sqlite: bool, count: int, first_chat: int, chats: int, status: str, at: datetime) -> None:
    """Insert ``count`` rows in one statement, spread round-robin over ``chats`` chats from ``first_chat``."""
    values = {"count": count, "first_chat": first_chat, "chats": chats, "payload": PAYLOAD, "status": status, "at": at}
    await connection.execute(SQLITE_ROWS if sqlite else POSTGRES_ROWS, values)


async def build(database: Database, stored: int, unsent: int, chats: int) -> float:
    """Fill the outbox: ``stored - unsent`` sent rows, then the backlog (due a minute ago); returns the seconds."""
    started = time.perf_counter()
    long_ago = datetime.now(UTC) - timedelta(days=1)
    async with database.engine.begin() as connection:
        await insert_rows(connection, database.is_sqlite, stored - unsent, 1, STORED_CHATS, "sent", long_ago)
        await insert_rows(connection, database.is_sqlite, unsent, 1, chats, "pending", datetime.now(UTC) - timedelta(minutes=1))
    if database.is_postgresql:  # as autovacuum would have by now; SQLite databases get no statistics in service
        async with database.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE outbox_messages"))
    return time.perf_counter() - started


async def explain(database: Database) -> list[str]:
    """One more claim, as the queue sends it to the driver, under ``EXPLAIN ANALYZE`` (rolled back).

    SQLite's ``EXPLAIN QUERY PLAN`` shows the plan only.
    """
    sent: list[tuple[str, Any]] = []

    def capture(connection: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            sent.append((statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await SqlAlchemyOutboxQueue(database).claim(BATCH, LEASE)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", capture)
    [(claim, parameters)] = sent
    prefix = "EXPLAIN (ANALYZE, COSTS OFF)" if database.is_postgresql else "EXPLAIN QUERY PLAN"
    async with database.engine.connect() as connection:
        rows = (await connection.exec_driver_sql(f"{prefix} {claim}", parameters)).all()
        await connection.rollback()
    plan = [str(row[-1]) for row in rows]
    return [line.rstrip() for line in plan if PLAN_GIST.search(line)] if database.is_postgresql else plan


async def claims(database: Database, count: int) -> list[float]:
    """Time ``count`` claims; after each, untimed, mark the batch sent and queue as many new rows to the same chats."""
    queue = SqlAlchemyOutboxQueue(database)
    latencies: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        items = await queue.claim(BATCH, LEASE)
        latencies.append(time.perf_counter() - started)
        now = datetime.now(UTC)
        async with database.engine.begin() as connection:
            await connection.execute(FINISH_CLAIMED, {"at": now})
            for item in items:
                await insert_rows(connection, database.is_sqlite, 1, item.chat_id, 1, "pending", now - timedelta(seconds=1))
    return latencies


async def measure(database: Database, name: str, stored: int, unsent: int, chats: int, count: int) -> ClaimFigures:
    """Migrate, build, time ``count`` claims on ``database``, then explain one more."""
    await upgrade(database)
    build_seconds = await build(database, stored, unsent, chats)
    await claims(database, 5)  # warm the pool and the statement cache
    latencies = await claims(database, count)
    plan = await explain(database)  # after the claims, with the churn they left behind
    return ClaimFigures(name, stored, unsent, chats, build_seconds, latencies, plan)


async def on_postgresql(stored: int, unsent: int, chats: int, count: int) -> ClaimFigures:
    """The figures on a throwaway schema of the shared PostgreSQL server."""
    async with throwaway_schema("relay_claim_bench") as schema:
        database = Database(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
        try:
            return await measure(database, "PostgreSQL", stored, unsent, chats, count)
        finally:
            await database.dispose()


async def on_sqlite(stored: int, unsent: int, chats: int, count: int) -> ClaimFigures:
    """The figures on a temporary SQLite file (WAL, synchronous=FULL, as durabot opens it)."""
    with tempfile.TemporaryDirectory(prefix="relay_claim_bench") as folder:
        database = Database(f"sqlite:///{Path(folder) / 'outbox.sqlite3'}")
        try:
            return await measure(database, "SQLite", stored, unsent, chats, count)
        finally:
            await database.dispose()


Measure = Callable[[int, int, int, int], Awaitable[ClaimFigures]]
DATABASES: dict[str, Measure] = {"postgresql": on_postgresql, "sqlite": on_sqlite}


async def run(
    stored: int = 1_000_000, unsent: int = 10_000, chats: int = 2_000, count: int = 200, databases: Sequence[Measure] = ()
) -> list[ClaimFigures]:
    """Both databases (or ``databases``), PostgreSQL first; prints each one's figures as it finishes."""
    figures = []
    for measured in databases or DATABASES.values():
        result = await measured(stored, unsent, chats, count)
        print("\n".join(result.lines()), flush=True)
        figures.append(result)
    return figures


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=1_000_000, help="rows stored in all (default 1,000,000)")
    parser.add_argument("--unsent", type=int, default=10_000, help="of which unsent (default 10,000)")
    parser.add_argument("--chats", type=int, default=2_000, help="chats the unsent rows belong to (default 2,000)")
    parser.add_argument("--claims", type=int, default=200, help="claims timed per database (default 200)")
    parser.add_argument("--quick", action="store_true", help="100,000 rows stored and 50 claims")
    parser.add_argument("--only", choices=("postgresql", "sqlite"), help="measure one database only")
    args = parser.parse_args(argv)
    stored, count = (100_000, 50) if args.quick else (args.stored, args.claims)
    databases = [DATABASES[args.only]] if args.only else list(DATABASES.values())
    asyncio.run(run(stored, args.unsent, args.chats, count, databases))


if __name__ == "__main__":
    main(sys.argv[1:])
