"""Raw database ceilings: one single-row JSON upsert per transaction, straight through asyncpg or stdlib sqlite3.

These are what a step could cost if it were nothing but its one write: the engine's figures are
read as a fraction of them. Run alone with ``.venv/bin/python bench/ceilings.py [seconds]``.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from common import POSTGRES_URL, Run, state_json, asyncpg_dsn, throwaway_schema

KEYS_PER_CONNECTION = 1_000
"""Each connection upserts its own keys (as each chat writes its own rows): no connection waits on another's row lock."""

SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=30000")
"""The PRAGMAs durabot sets on every SQLite connection (see ``durabot.storage.database``)."""


class PostgresCeiling:
    """asyncpg, one ``INSERT … ON CONFLICT DO UPDATE`` of a JSONB row per transaction, on N connections at once."""

    def __init__(self, schema: str, url: str = POSTGRES_URL) -> None:
        self._schema = schema
        self._url = url
        self._connections: list[asyncpg.Connection] = []
        self._upsert = (
            f'INSERT INTO "{schema}".ceiling (id, data) VALUES ($1, $2::jsonb) '
            "ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data"
        )

    async def open(self, connections: int = 8) -> None:
        """Connect ``connections`` times and create the table."""
        self._connections = [await asyncpg.connect(asyncpg_dsn(self._url)) for _ in range(connections)]
        await self._connections[0].execute(f'CREATE TABLE "{self._schema}".ceiling (id bigint PRIMARY KEY, data jsonb NOT NULL)')

    async def run(self, connections: int, seconds: float) -> Run:
        """Upsert for ``seconds`` on the first ``connections`` connections; one operation is one committed transaction."""
        deadline = time.perf_counter() + seconds
        latencies: list[float] = []

        async def writer(index: int, connection: asyncpg.Connection) -> None:
            keys = random.Random(index)
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                key = index * KEYS_PER_CONNECTION + keys.randrange(KEYS_PER_CONNECTION)
                async with connection.transaction():
                    await connection.execute(self._upsert, key, state_json(len(latencies)))
                latencies.append(time.perf_counter() - started)

        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(writer(index, c) for index, c in enumerate(self._connections[:connections])))
        return Run(len(latencies), time.perf_counter() - started, time.process_time() - cpu, latencies)

    async def close(self) -> None:
        """Close the connections (the schema's owner drops the table)."""
        for connection in self._connections:
            await connection.close()


class SqliteCeiling:
    """stdlib sqlite3 with durabot's PRAGMAs: ``BEGIN IMMEDIATE``, one upsert, ``COMMIT``, on one connection."""

    def __init__(self, path: Path) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None)
        for pragma in SQLITE_PRAGMAS:
            self._connection.execute(pragma)
        self._connection.execute("CREATE TABLE ceiling (id INTEGER PRIMARY KEY, data TEXT NOT NULL)")

    def run(self, seconds: float) -> Run:
        """Upsert for ``seconds``; one operation is one committed transaction."""
        keys = random.Random(0)
        upsert = "INSERT INTO ceiling (id, data) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data"
        latencies: list[float] = []
        cpu, started = time.process_time(), time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            self._connection.execute("BEGIN IMMEDIATE")
            self._connection.execute(upsert, (keys.randrange(KEYS_PER_CONNECTION), state_json(len(latencies))))
            self._connection.execute("COMMIT")
            latencies.append(time.perf_counter() - began)
        return Run(len(latencies), time.perf_counter() - started, time.process_time() - cpu, latencies)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


async def main(seconds: float) -> None:
    """Print each ceiling once."""
    with tempfile.TemporaryDirectory(prefix="durabot-bench-") as folder:
        sqlite = SqliteCeiling(Path(folder) / "ceiling.sqlite3")
        print(f"sqlite3 upsert, 1 connection: {sqlite.run(seconds).rate:,.0f} txn/s")
        sqlite.close()
    async with throwaway_schema("durabot_bench_ceiling") as schema:
        postgres = PostgresCeiling(schema)
        await postgres.open(8)
        try:
            for connections in (1, 8):
                run = await postgres.run(connections, seconds)
                print(f"asyncpg upsert, {connections} connection(s): {run.rate:,.0f} txn/s")
        finally:
            await postgres.close()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0))
