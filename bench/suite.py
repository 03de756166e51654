"""``make bench``: the step pipeline's figures, interleaved with the raw ceilings, and issue 8's targets met or not.

Every benchmark is set up once; then each round runs them all in turn, a raw ceiling next to
the durabot figure read against it, and the figures printed are medians over the rounds (three
in a full run, one with ``--quick``). The real ``durabot run`` is measured once, after the
rounds. ``--relay-claim-output`` names a file holding what ``bench/relay_claim.py`` printed
(``make bench`` runs it first), so its figure joins the table of targets.

Nothing here asserts: on a shared two-core machine the figures are noisy, and they are for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from anchor_ptb import PtbAnchor
from ceilings import PostgresCeiling, SqliteCeiling
from common import FULL, QUICK, Ids, Profile, Run, Series, section, throwaway_schema
from end_to_end import EndToEnd, run_end_to_end
from end_to_end import describe as describe_end_to_end
from engine_throughput import EngineTarget, postgres_database
from log_cost import info_lines
from report import (
    LOG_LINE, PG_1, PG_8, PG_8_INFO, PG_8_LARGE, PG_RAW_1, PG_RAW_8, PTB_SHIPPED, PTB_WRITTEN, SQLITE_1, SQLITE_8, SQLITE_8_LARGE,
    SQLITE_RAW, Results, print_comparisons, print_targets, print_throughput, relay_claims, targets,
)
from durabot.logs import configure_logging
from durabot.storage.database import Database

PARTS = ("postgresql", "sqlite", "large", "ptb", "e2e")
"""What ``--skip`` can leave out."""


@dataclass
class Suite:
    """Everything set up for the rounds, in the order a round runs it, and the figures so far.

    Args:
        profile: The sizes and durations.
        stack: Closes what is set up, in reverse order.
        folder: Where the SQLite files and the pickle file go.
        null: The stream durabot's logging writes to.
    """

    profile: Profile
    stack: contextlib.AsyncExitStack
    folder: Path
    null: TextIO
    ids: Ids = dataclasses.field(default_factory=Ids)
    order: list[tuple[str, Callable[[], Awaitable[Run]]]] = dataclasses.field(default_factory=list)
    engines: list[EngineTarget] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = Results(self.profile)

    def add(self, name: str, run: Callable[[], Awaitable[Run]]) -> None:
        """Run ``run`` once per round under ``name``."""
        self.order.append((name, run))
        self.results.series[name] = Series(name)

    async def engine(self, label: str, database: Database, stored: int) -> EngineTarget:
        """An engine on ``database``, migrated, with ``stored`` conversations stored beforehand."""
        target = EngineTarget(label, database)
        self.stack.push_async_callback(target.close)
        took = await target.open(stored, self.ids)
        print(f"   {label}: migrated, {stored:,} conversations stored beforehand ({took:.0f} s)", flush=True)
        self.engines.append(target)
        return target

    async def schema(self, prefix: str) -> str:
        """A throwaway PostgreSQL schema, dropped when the suite closes."""
        return await self.stack.enter_async_context(throwaway_schema(prefix))

    async def set_up_postgresql(self, with_large_store: bool) -> None:
        """The asyncpg ceilings and the engine on PostgreSQL, with small and large stores, and the INFO-logging run."""
        seconds, ids = self.profile.seconds, self.ids
        try:
            ceiling = PostgresCeiling(await self.schema("durabot_bench_raw"))
        except OSError as error:
            self.notes.append(f"PostgreSQL skipped: server unreachable ({error})")
            return
        self.stack.push_async_callback(ceiling.close)
        await ceiling.open(8)
        main = await self.engine("PostgreSQL", postgres_database(await self.schema("durabot_bench_main")), self.profile.small_store)
        self.add(PG_RAW_1, lambda: ceiling.run(1, seconds))
        self.add(PG_1, lambda: main.run(1, seconds, ids))
        self.add(PG_RAW_8, lambda: ceiling.run(8, seconds))
        self.add(PG_8, lambda: main.run(8, seconds, ids))
        if with_large_store:
            large_database = postgres_database(await self.schema("durabot_bench_large"))
            large = await self.engine("PostgreSQL, large store", large_database, self.profile.large_store_postgres)
            self.add(PG_8_LARGE, lambda: large.run(8, seconds, ids))
        self.add(PG_8_INFO, lambda: self.with_info_logs(main.run(8, seconds, ids)))
        self.add(LOG_LINE, lambda: in_loop(lambda length: info_lines(self.null, length), seconds / 4))

    async def set_up_sqlite(self, with_large_store: bool) -> None:
        """The sqlite3 ceiling and the engine on SQLite files, with small and large stores."""
        seconds, ids = self.profile.seconds, self.ids
        ceiling = SqliteCeiling(self.folder / "ceiling.sqlite3")
        self.stack.callback(ceiling.close)
        main = await self.engine("SQLite", Database(f"sqlite:///{self.folder}/main.sqlite3"), self.profile.small_store)
        self.add(SQLITE_RAW, lambda: in_loop(ceiling.run, seconds))
        self.add(SQLITE_1, lambda: main.run(1, seconds, ids))
        self.add(SQLITE_8, lambda: main.run(8, seconds, ids))
        if with_large_store:
            large_database = Database(f"sqlite:///{self.folder}/large.sqlite3")
            large = await self.engine("SQLite, large store", large_database, self.profile.large_store_sqlite)
            self.add(SQLITE_8_LARGE, lambda: large.run(8, seconds, ids))

    async def set_up_anchor(self) -> None:
        """python-telegram-bot over a pickle file of stored conversations."""
        seconds, ids = self.profile.seconds, self.ids
        anchor = PtbAnchor(self.folder)
        await anchor.open(self.profile.ptb_conversations)
        self.stack.push_async_callback(anchor.close)
        print(f"   PTB: {anchor.stored_conversations():,} conversations loaded from the pickle file", flush=True)
        self.add(PTB_SHIPPED, lambda: anchor.run(seconds, ids, write_every_step=False))
        self.add(PTB_WRITTEN, lambda: anchor.run(seconds, ids, write_every_step=True))

    async def with_info_logs(self, run: Awaitable[Run]) -> Run:
        """``run`` with durabot logging at INFO (one JSON line per applied step), then back to WARNING."""
        quiet_logs("INFO", self.null)
        try:
            return await run
        finally:
            quiet_logs("WARNING", self.null)

    async def run_rounds(self) -> None:
        """Each round runs every benchmark once, in order; one that fails is reported and left out afterwards."""
        rounds = self.profile.rounds
        for number in range(1, rounds + 1):
            for name, run in self.order:
                series = self.results.series[name]
                if series.error:
                    continue
                try:
                    result = await run()
                except Exception as error:  # that figure is missing; the others still count
                    series.error = f"{type(error).__name__}: {error}"[:300]
                    print(f"   [{number}/{rounds}] {name}: FAILED {series.error}", flush=True)
                    continue
                series.runs.append(result)
                print(f"   [{number}/{rounds}] {name:<48} {result.rate:8,.0f}/s  "
                      f"CPU {result.cpu_ms_per_operation:5.2f} ms/op", flush=True)

    async def checks(self) -> list[str]:
        """One line per engine: conversations driven to the end against machines saved (they should match)."""
        lines = []
        for engine in self.engines:
            saved = await engine.machines_saved()
            flag = "" if saved == engine.conversations else "  ← MISMATCH: some conversations did not end as planned"
            driven = f"{engine.conversations:,} conversations driven to the end"
            lines.append(f"check: {engine.label}: {driven}, {saved:,} machines saved{flag}")
        return lines


def quiet_logs(level: str, stream: TextIO) -> None:
    """durabot's own logging, configured as the service configures it (JSON), written to ``stream``."""
    configure_logging(level=level, fmt="json", stream=stream)


async def in_loop(run: Callable[[float], Run], seconds: float) -> Run:
    """A synchronous benchmark, run where the others run: in the event loop's thread, with nothing else running."""
    return run(seconds)


async def end_to_end(profile: Profile) -> tuple[EndToEnd | None, str | None]:
    """``durabot run`` against the sandbox, once; the figures, or why there are none."""
    with section(f"durabot run end to end: {profile.e2e_rate:g} updates/s for {profile.e2e_seconds:g} s"):
        try:
            result = await run_end_to_end(profile.e2e_seconds, profile.e2e_rate)
        except Exception as error:  # the other figures still stand
            message = f"{type(error).__name__}: {error}"[:500]
            print(f"   FAILED {message}")
            return None, message
        print("\n".join(f"   {line}" for line in describe_end_to_end(result)))
        return result, None


def parse(argv: list[str]) -> tuple[Profile, argparse.Namespace]:
    """The profile (full or ``--quick``, with any size overridden) and the other options."""
    parser = argparse.ArgumentParser(description="durabot's benchmarks, interleaved; figures, never assertions.")
    parser.add_argument("--quick", action="store_true", help="one round of 2 s runs, 100k stored, 5 s end to end (about a minute)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (medians over them)")
    parser.add_argument("--seconds", type=float, help="length of each timed run")
    parser.add_argument("--large-postgres", type=int, help="conversations stored in the large PostgreSQL schema")
    parser.add_argument("--large-sqlite", type=int, help="conversations stored in the large SQLite file")
    parser.add_argument("--e2e-seconds", type=float, help="how long durabot run is fed")
    parser.add_argument("--e2e-rate", type=float, help="updates per second fed to durabot run")
    parser.add_argument("--skip", action="append", default=[], choices=PARTS, help="leave a part out (repeatable)")
    parser.add_argument("--relay-claim-output", type=Path, help="a file holding bench/relay_claim.py's output")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick or os.environ.get("BENCH_QUICK") else FULL
    overrides = {"rounds": args.rounds, "seconds": args.seconds, "large_store_postgres": args.large_postgres,
                 "large_store_sqlite": args.large_sqlite, "e2e_seconds": args.e2e_seconds, "e2e_rate": args.e2e_rate}
    return dataclasses.replace(profile, **{key: value for key, value in overrides.items() if value is not None}), args


async def main(argv: list[str]) -> None:
    """Set up, run the rounds, run durabot end to end, print the tables."""
    profile, args = parse(argv)
    skip, started = set(args.skip), time.perf_counter()
    print(f"durabot bench: {profile.rounds} round(s) of {profile.seconds:g} s runs; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (shared: the figures are noisy)", flush=True)
    with open(os.devnull, "w") as null, tempfile.TemporaryDirectory(prefix="durabot-bench-") as folder:
        quiet_logs("WARNING", null)
        async with contextlib.AsyncExitStack() as stack:
            suite = Suite(profile, stack, Path(folder), null)
            with section("setting up"):
                if "postgresql" not in skip:
                    await suite.set_up_postgresql("large" not in skip)
                if "sqlite" not in skip:
                    await suite.set_up_sqlite("large" not in skip)
                if "ptb" not in skip:
                    await suite.set_up_anchor()
            with section(f"interleaved rounds ({len(suite.order)} benchmarks a round)"):
                await suite.run_rounds()
            checks = await suite.checks()
        result, error = await end_to_end(profile) if not {"e2e", "postgresql"} & skip else (None, "skipped")
    print_throughput(suite.results)
    print_comparisons(suite.results)
    print("\n".join(checks + [f"note: {note}" for note in suite.notes]))
    print_targets(targets(suite.results, relay_claims(args.relay_claim_output), result, error))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(bench took {time.perf_counter() - started:.0f} s after the relay claim; its peak RSS {peak:.0f} MiB)")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
