"""Engine throughput and memory: complete add-machine conversations on SQLite and PostgreSQL, figures printed.

Run with ``make bench`` (or ``.venv/bin/python bench/engine_throughput.py [chats] [workers]``).
Nothing here asserts a speed: these machines are noisy, so the figures are for reading.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid

from sqlalchemy import text

from durabot.bootstrap import build_engine
from durabot.config import Settings
from durabot.engine.events import Event
from durabot.storage.database import Database
from durabot.storage.migrate import upgrade
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory

ANSWERS = ("/addmachine", "Press", "Haas", "VF-2", "SN-1", "Hall B", "weekly oil")


def rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def drive(database: Database, chats: int, workers: int) -> None:
    await upgrade(database)
    engine = build_engine(SqlAlchemyUnitOfWorkFactory(database), Settings())
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for chat in range(chats):
        queue.put_nowait(chat)
    update_ids = iter(range(1, 10**9))

    async def worker() -> None:
        while not queue.empty():
            chat = queue.get_nowait()
            for answer in ANSWERS:
                started = time.perf_counter()
                await engine.handle(Event.message(next(update_ids), 10_000 + chat, 10_000 + chat, answer))
                latencies.append(time.perf_counter() - started)

    memory_before = rss_mib()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(
        f"{database.dialect:>10}: {len(latencies)} steps in {elapsed:.1f} s = {len(latencies) / elapsed:.0f} steps/s; "
        f"per step p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms; "
        f"peak RSS {memory_before:.0f} → {rss_mib():.0f} MiB over {chats} conversations"
    )


async def main(chats: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        sqlite = Database(f"sqlite:///{folder}/bench.sqlite3")
        await drive(sqlite, chats, workers)
        await sqlite.dispose()
    url = os.environ.get("DURABOT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"durabot_bench_{uuid.uuid4().hex[:8]}"
    admin = Database(url)
    try:
        async with admin.engine.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OSError as error:
        print(f"postgresql: skipped, server unreachable ({error})")
        return
    postgres = Database(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        await drive(postgres, chats, workers)
    finally:
        await postgres.dispose()
        async with admin.engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


if __name__ == "__main__":
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else 8))
