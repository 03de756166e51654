"""What every benchmark shares: one timed run's figures, medians over rounds, sizes, and throwaway PostgreSQL schemas.

Nothing here asserts a speed: the machines are shared and noisy, so every figure is for reading.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import asyncpg

POSTGRES_URL = os.environ.get("DURABOT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
"""The shared PostgreSQL server and database the benchmarks borrow (schemas and databases are dropped afterwards)."""

ANSWERS = ("/addmachine", "Press", "Haas", "VF-2", "SN-1", "Hall B", "weekly oil")
"""One complete add-machine conversation: the command, then an answer to each of its six questions."""

def state_json(serial: int) -> str:
    """A conversation's ``state_data`` halfway through add-machine, the payload the raw ceilings upsert.

    ``serial`` makes every payload different: SQLite skips writing (and syncing) a row rewritten
    with identical bytes, which would make an upsert ceiling 30 times too high.
    """
    return (
        f'{{"answers": {{"nickname": "Press {serial}", "manufacturer": "Haas", "model_number": "VF-2"}}, '
        '"order": ["nickname", "manufacturer", "model_number"]}'
    )


@dataclass(frozen=True)
class Profile:
    """How big and how long: the full run (about 6 minutes on two cores) or ``--quick`` (about one).

    Attributes:
        rounds: Interleaved rounds; the figures are medians over them.
        seconds: How long each timed run lasts.
        small_store: Conversations stored beforehand in the main databases (the "1k" side).
        large_store_postgres: Conversations stored beforehand in the large PostgreSQL schema.
        large_store_sqlite: The same for SQLite.
        ptb_conversations: Conversations stored in python-telegram-bot's pickle file.
        e2e_seconds: How long updates are fed to the real ``durabot run``.
        e2e_rate: Updates per second fed to it.
    """

    rounds: int
    seconds: float
    small_store: int
    large_store_postgres: int
    large_store_sqlite: int
    ptb_conversations: int
    e2e_seconds: float
    e2e_rate: float


FULL = Profile(3, 4.0, 1_000, 1_000_000, 1_000_000, 10_000, 15.0, 200.0)
QUICK = Profile(1, 2.0, 1_000, 100_000, 100_000, 10_000, 5.0, 200.0)


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@dataclass
class Run:
    """One timed run: how many operations, over how long, at what process CPU cost, and each one's latency (seconds).

    Attributes:
        operations: Steps, transactions or updates completed.
        seconds: Wall-clock duration.
        cpu_seconds: This process's CPU time (every thread) over the run.
        latencies: Per-operation latencies, in seconds.
        counts: Extra per-run counters (statements, transactions…), totals over the run.
    """

    operations: int
    seconds: float
    cpu_seconds: float
    latencies: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.operations / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_operation(self) -> float:
        """Milliseconds of this process's CPU per operation."""
        return self.cpu_seconds * 1000 / self.operations if self.operations else 0.0

    def per_operation(self, counter: str) -> float:
        """A counter divided by the operations."""
        return self.counts.get(counter, 0) / self.operations if self.operations else 0.0


@dataclass
class Series:
    """The runs of one benchmark across rounds, summarised by medians."""

    name: str
    runs: list[Run] = field(default_factory=list)
    error: str | None = None

    def median(self, figure: Callable[[Run], float]) -> float:
        """The median of ``figure`` over the runs (0 when there are none)."""
        return statistics.median(figure(run) for run in self.runs) if self.runs else 0.0

    @property
    def rate(self) -> float:
        """Median operations per second."""
        return self.median(lambda run: run.rate)

    @property
    def p50_ms(self) -> float:
        """Median of the runs' median latencies, in ms."""
        return self.median(lambda run: percentile(run.latencies, 0.5) * 1000)

    @property
    def p99_ms(self) -> float:
        """Median of the runs' 99th-percentile latencies, in ms."""
        return self.median(lambda run: percentile(run.latencies, 0.99) * 1000)

    @property
    def cpu_ms(self) -> float:
        """Median CPU per operation, in ms."""
        return self.median(lambda run: run.cpu_ms_per_operation)

    def per_operation(self, counter: str) -> float:
        """Median of a counter per operation."""
        return self.median(lambda run: run.per_operation(counter))


def paired_ratio(numerator: Series, denominator: Series, figure: Callable[[Run], float] = lambda run: run.rate) -> float:
    """The median over rounds of ``figure(numerator) / figure(denominator)`` within each round.

    Pairing runs of the same round cancels most of the drift of a shared machine's load.
    """
    ratios = [figure(a) / figure(b) for a, b in zip(numerator.runs, denominator.runs, strict=False) if figure(b)]
    return statistics.median(ratios) if ratios else 0.0


class Ids:
    """Fresh chat and update ids for the whole process, so no run ever repeats another's."""

    def __init__(self, first_chat: int = 1_000_000_000) -> None:
        self._chats = iter(range(first_chat, first_chat + 10**9))
        self._updates = iter(range(1, 10**12))

    def chat(self) -> int:
        """A chat (and user) id not used before."""
        return next(self._chats)

    def update(self) -> int:
        """An update id not used before."""
        return next(self._updates)


def unique_name(prefix: str) -> str:
    """A name for a throwaway schema or database."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def asyncpg_dsn(url: str) -> str:
    """``url`` as asyncpg takes it (no ``+asyncpg`` driver suffix)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def throwaway_schema(prefix: str, url: str = POSTGRES_URL) -> AsyncIterator[str]:
    """A new schema on the shared server, dropped with everything in it on the way out."""
    name = unique_name(prefix)
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await admin.execute(f'CREATE SCHEMA "{name}"')
        yield name
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await admin.close()


@contextlib.asynccontextmanager
async def throwaway_database(prefix: str, url: str = POSTGRES_URL) -> AsyncIterator[str]:
    """A new database on the shared server (its URL is yielded), dropped on the way out even if still connected."""
    name = unique_name(prefix)
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = asyncpg_dsn(url).rpartition("/")
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def fmt_rate(value: float) -> str:
    """A rate with thousands separators."""
    return f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    """A ratio such as ``0.04×``."""
    return f"{value:.3f}×" if value < 0.1 else f"{value:.2f}×"


@contextlib.contextmanager
def section(title: str) -> Iterator[None]:
    """Print a heading, and how long the section took when it ends."""
    print(f"\n== {title}", flush=True)
    started = time.perf_counter()
    try:
        yield
    finally:
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)
