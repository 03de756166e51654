"""The suite's tables: every benchmark's medians, the sentences that compare them, and issue 8's targets met or not."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from common import Profile, Series, fmt_rate, fmt_ratio, paired_ratio
from end_to_end import EndToEnd
from engine_throughput import round_trips

PG_RAW_1, PG_RAW_8 = "asyncpg upsert, 1 connection", "asyncpg upsert, 8 connections"
PG_1, PG_8 = "engine PostgreSQL, 1 chat", "engine PostgreSQL, 8 chats"
PG_8_INFO, PG_8_LARGE = "engine PostgreSQL, 8 chats, INFO logs", "engine PostgreSQL, 8 chats, large store"
SQLITE_RAW = "sqlite3 upsert, 1 connection"
SQLITE_1, SQLITE_8 = "engine SQLite, 1 chat", "engine SQLite, 8 chats"
SQLITE_8_LARGE = "engine SQLite, 8 chats, large store"
LOG_LINE = "durabot INFO log line, alone"
PTB_SHIPPED = "PTB 22 + PicklePersistence, as shipped"
PTB_WRITTEN = "PTB 22 + PicklePersistence, written every step"

CEILING_OF = {
    PG_1: PG_RAW_1, PG_8: PG_RAW_8, PG_8_INFO: PG_RAW_8, PG_8_LARGE: PG_RAW_8,
    SQLITE_1: SQLITE_RAW, SQLITE_8: SQLITE_RAW, SQLITE_8_LARGE: SQLITE_RAW,
}
"""Which raw ceiling each engine figure is read against: 8 chats against 8 connections, SQLite against sqlite3."""

LEGEND = """\
ops: steps (Engine.handle calls) or committed transactions. CPU: this process, every thread (not the PostgreSQL server's).
stmts / txns / trips per step, as SQLAlchemy's connection events and (for the step's own statements on PostgreSQL)
asyncpg's query logger count them: statements; transactions begun; statements + BEGIN + COMMIT + ROLLBACK (asyncpg's
statement preparation on a cache miss is not counted; on SQLite, BEGIN IMMEDIATE is one of the statements). ÷ceiling and every ratio below: the median of the ratios within each round."""


@dataclass
class Results:
    """The figures of every benchmark so far, by name, and the sizes they were measured at."""

    profile: Profile
    series: dict[str, Series] = field(default_factory=dict)

    def get(self, name: str) -> Series | None:
        """The figures of ``name``, if it ran at least once."""
        found = self.series.get(name)
        return found if found and found.runs else None

    def ratio_to_ceiling(self, name: str) -> float | None:
        """The engine's steps/s as a fraction of its ceiling's txn/s."""
        figures, ceiling = self.get(name), self.get(CEILING_OF.get(name, ""))
        return paired_ratio(figures, ceiling) if figures and ceiling else None


def trips_per_step(figures: Series) -> float:
    """Median round trips per step."""
    return figures.median(lambda run: round_trips(run.counts) / max(run.operations, 1))


def print_throughput(results: Results) -> None:
    """The table of every interleaved benchmark."""
    print(f"\n{'benchmark':<48} {'ops/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/op':>9} {'÷ceiling':>9} "
          f"{'stmts':>6} {'txns':>5} {'trips':>6}")
    for name, series in results.series.items():
        figures = results.get(name)
        if figures is None:
            print(f"{name:<48} {'—':>8}  {series.error or 'not run'}")
            continue
        ratio = results.ratio_to_ceiling(name)
        counted = (f"{figures.per_operation('statements'):6.1f} {figures.per_operation('begins'):5.1f} {trips_per_step(figures):6.1f}"
                   if figures.runs[0].counts else "")
        print(f"{name:<48} {fmt_rate(figures.rate):>8} {figures.p50_ms:7.1f} {figures.p99_ms:7.1f} {figures.cpu_ms:9.2f} "
              f"{fmt_ratio(ratio) if ratio is not None else '':>9} {counted}")
    print(LEGEND)


def print_comparisons(results: Results) -> None:
    """Logging cost, large store versus small, and the anchor, each as a sentence."""
    warning, info = results.get(PG_8), results.get(PG_8_INFO)
    if warning and info:
        print(f"\nlogging (item 6), PostgreSQL, 8 chats: WARNING {warning.rate:,.0f} steps/s, INFO {info.rate:,.0f} steps/s; "
              f"CPU {warning.cpu_ms:.2f} → {info.cpu_ms:.2f} ms/step → {logging_cost(warning, info)} "
              "(JSON lines to a null stream; on a shared machine this difference is mostly noise)")
    if (line := results.get(LOG_LINE)) and warning:
        print(f"  the engine's INFO line measured alone: {line.cpu_ms * 1000:.0f} µs CPU, "
              f"{line.cpu_ms / warning.cpu_ms:.1%} of a step's {warning.cpu_ms:.2f} ms")
    profile = results.profile
    for small_name, large_name, stored in stored_pairs(profile):
        small, large = results.get(small_name), results.get(large_name)
        if small and large:
            print(f"stored conversations, {database_of(small_name)}, 8 chats: {large.rate:,.0f} steps/s at {stored:,} stored "
                  f"vs {small.rate:,.0f} at {profile.small_store:,} → {paired_ratio(large, small):.2f}×")
    shipped, written = results.get(PTB_SHIPPED), results.get(PTB_WRITTEN)
    if shipped and written:
        print(f"anchor: python-telegram-bot 22, persistent ConversationHandler over PicklePersistence holding "
              f"{profile.ptb_conversations:,} conversations, offline bot, one update at a time:")
        print(f"  as shipped (persistence written on a 60 s timer: a crash loses up to a minute): {shipped.rate:,.0f} steps/s, "
              f"p99 {shipped.p99_ms:.1f} ms, CPU {shipped.cpu_ms:.2f} ms/step")
        print(f"  written every step (update_persistence + flush rewrite the whole pickle, no fsync): {written.rate:,.0f} steps/s, "
              f"p99 {written.p99_ms:.1f} ms, CPU {written.cpu_ms:.2f} ms/step")


def logging_cost(warning: Series, info: Series) -> str:
    """What INFO logging costs over WARNING, in steps/s and in CPU per step."""
    cpu = paired_ratio(info, warning, lambda run: run.cpu_ms_per_operation)
    return f"INFO costs {1 - paired_ratio(info, warning):.0%} of steps/s and {cpu - 1:+.0%} CPU per step"


def stored_pairs(profile: Profile) -> tuple[tuple[str, str, int], ...]:
    """(small-store figure, large-store figure, conversations in the large store), per database."""
    return (PG_8, PG_8_LARGE, profile.large_store_postgres), (SQLITE_8, SQLITE_8_LARGE, profile.large_store_sqlite)


def database_of(name: str) -> str:
    """``PostgreSQL`` or ``SQLite`` from a benchmark's name."""
    return name.split()[1].rstrip(",")


@dataclass(frozen=True)
class ClaimFigure:
    """One database's relay-claim figure as ``bench/relay_claim.py`` printed it."""

    database: str
    stored: str
    median_ms: float
    p99_ms: float

    @property
    def figure(self) -> str:
        """The figure as the table shows it."""
        return f"median {self.median_ms:.2f} ms, p99 {self.p99_ms:.2f} ms ({self.stored} rows stored)"


CLAIM_LINE = re.compile(
    r"^(?P<db>PostgreSQL|SQLite): .*?(?P<stored>[\d,]+) rows stored.*?median (?P<median>[\d.]+) ms, p99 (?P<p99>[\d.]+) ms"
)
"""The summary line ``bench/relay_claim.py`` prints per database."""


def relay_claims(path: Path | None) -> list[ClaimFigure]:
    """The claim figures in ``relay_claim.py``'s output, if it ran and printed them."""
    if path is None or not path.exists():
        return []
    lines = (line.strip() for line in path.read_text(errors="replace").splitlines())
    matches = (CLAIM_LINE.match(line) for line in lines)
    return [ClaimFigure(m["db"], m["stored"], float(m["median"]), float(m["p99"])) for m in matches if m]


@dataclass(frozen=True)
class Target:
    """One of issue 8's targets, today's figure, and whether it is met (``None``: no figure, or no number to meet)."""

    target: str
    figure: str
    met: bool | None


def ceiling_targets(results: Results) -> list[Target]:
    """Steps/s against the raw ceilings, and CPU per step."""
    found = []
    for name, share, wording in ((PG_8, 0.25, "PostgreSQL steps/s at 8 chats ≥ 0.25× raw asyncpg at 8 connections"),
                                 (SQLITE_8, 0.15, "SQLite steps/s (8 chats) ≥ 0.15× raw sqlite3")):
        ratio, figures, ceiling = results.ratio_to_ceiling(name), results.get(name), results.get(CEILING_OF[name])
        if ratio is None or figures is None or ceiling is None:
            found.append(Target(wording, "no figure", None))
        else:
            found.append(Target(wording, f"{fmt_ratio(ratio)} ({figures.rate:,.0f} vs {ceiling.rate:,.0f} txn/s)", ratio >= share))
        if name == PG_8:
            found.append(Target("CPU per step ≤ 1.5 ms (PostgreSQL, 8 chats)", f"{figures.cpu_ms:.2f} ms" if figures else "no figure",
                                figures.cpu_ms <= 1.5 if figures else None))
    return found


def claim_targets(claims: list[ClaimFigure]) -> list[Target]:
    """The relay claim, PostgreSQL first."""
    wording = "relay claim at a 10,000 backlog over 1M rows ≤ 20 ms (PostgreSQL, median)"
    found = [Target(wording, claim.figure, claim.median_ms <= 20) for claim in claims if claim.database == "PostgreSQL"]
    if not found:
        found.append(Target(wording, "no figure from bench/relay_claim.py", None))
    found += [Target("relay claim, the same on SQLite (median)", claim.figure, claim.median_ms <= 20)
              for claim in claims if claim.database == "SQLite"]
    return found


def end_to_end_target(result: EndToEnd | None, error: str | None) -> Target:
    """``durabot run`` at 200 updates/s."""
    wording = "durabot run at 200 updates/s, send limits lifted: applied p99 ≤ 100 ms"
    if result is None:
        return Target(wording, f"no figure ({error or 'not run'})", None)
    figure = (f"p99 {result.applied_p99:,.0f} ms (p50 {result.applied_p50:,.0f}); {result.applied_rate:.0f} applied/s "
              f"of {result.offered_rate:.0f} offered" + ("" if result.rate_settings_known else "; send limits NOT lifted"))
    return Target(wording, figure, result.applied_p99 <= 100 and not result.unfinished)


def store_targets(results: Results) -> list[Target]:
    """Steps/s at the large store against the small one, per database."""
    found = []
    for small_name, large_name, stored in stored_pairs(results.profile):
        small, large = results.get(small_name), results.get(large_name)
        wording = (f"steps/s at {stored:,} stored conversations ≥ 0.8× at {results.profile.small_store:,} "
                   f"({database_of(small_name)}, 8 chats)")
        if small and large:
            ratio = paired_ratio(large, small)
            found.append(Target(wording, f"{ratio:.2f}× ({large.rate:,.0f} vs {small.rate:,.0f} steps/s)", ratio >= 0.8))
        else:
            found.append(Target(wording, "no figure", None))
    return found


def shape_targets(results: Results) -> list[Target]:
    """One transaction per update (item 1) and the cost of INFO logging (item 6)."""
    found = []
    if pg := results.get(PG_8):
        transactions = pg.per_operation("begins")
        found.append(Target("one transaction per update on the hot path (item 1; PostgreSQL, 8 chats)",
                            f"{transactions:.1f} transactions, {trips_per_step(pg):.1f} round trips per step", transactions <= 1.05))
    warning, info, line = results.get(PG_8), results.get(PG_8_INFO), results.get(LOG_LINE)
    if warning and info:
        alone = f"one line alone: {line.cpu_ms / warning.cpu_ms:.1%} of a step's CPU; A/B: " if line else ""
        found.append(Target("INFO logging costs little (item 6; no number given; the issue measured ~20 %)",
                            alone + logging_cost(warning, info), None))
    return found


def targets(results: Results, claims: list[ClaimFigure], end_to_end: EndToEnd | None, error: str | None) -> list[Target]:
    """Each target of the issue next to today's figure, in the issue's order."""
    return [*ceiling_targets(results), *claim_targets(claims), end_to_end_target(end_to_end, error),
            *store_targets(results), *shape_targets(results)]


def print_targets(found: list[Target]) -> None:
    """The final table."""
    width = max(len(target.target) for target in found)
    print(f"\n{'target (issue 8)':<{width}}  {'met?':<8}  figure today")
    print(f"{'-' * width}  {'-' * 8}  {'-' * 40}")
    for target in found:
        verdict = {True: "met", False: "not met", None: "—"}[target.met]
        print(f"{target.target:<{width}}  {verdict:<8}  {target.figure}")
