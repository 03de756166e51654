"""The console's conversations page: conversations in progress per flow and step, and each flow's funnel over a period."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, timedelta

from aiohttp import web
from sqlalchemy import func, select

from durabot.bootstrap import build_registry
from durabot.console.funnel import funnel_counts
from durabot.console.web import ConsolePages
from durabot.engine.registry import Registry
from durabot.flows.model import Flow
from durabot.storage.database import Database
from durabot.storage.repositories import CONVERSATIONS

PERIODS = (1, 7, 30, 90)
"""The periods (in days, today included) the funnel can be shown over."""
DEFAULT_DAYS = 7

LABEL_WIDTH, BAR_WIDTH, ROW_HEIGHT, VALUE_WIDTH = 200, 440, 26, 110
"""The funnel chart's geometry, in pixels: the label column, the longest bar, a row, the figures after a bar."""
COLOURS = {"started": "#2457c5", "step": "#6b8fd6", "completed": "#177245", "cancelled": "#b42318", "expired": "#a15c07"}


@dataclass(frozen=True)
class InProgress:
    """How many live conversations of a flow are waiting at one step."""

    flow: str
    step: str
    label: str
    count: int


@dataclass(frozen=True)
class FunnelBar:
    """One line of a funnel: what was counted, how often, its share of the conversations started, and where it is drawn."""

    event: str
    step: str
    label: str
    count: int
    share: int | None
    """Percent of ``started`` (``None`` when none started)."""
    y: int
    width: int

    @property
    def colour(self) -> str:
        return COLOURS.get(self.event, COLOURS["step"])

    @property
    def short_label(self) -> str:
        return self.label if len(self.label) <= 28 else self.label[:27] + "…"


@dataclass(frozen=True)
class FlowFunnel:
    """A flow's funnel over the period: started, each step reached in the flow's order, completed, cancelled, expired."""

    flow: str
    title: str
    bars: tuple[FunnelBar, ...]

    @property
    def started(self) -> int:
        return self.bars[0].count

    @property
    def counted(self) -> bool:
        """Whether anything was counted for the flow in the period."""
        return any(bar.count for bar in self.bars)

    @property
    def height(self) -> int:
        return len(self.bars) * ROW_HEIGHT

    @property
    def width(self) -> int:
        return LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH


def funnel_of(flow: Flow | None, name: str, counts: Counter[tuple[str, str]]) -> FlowFunnel:
    """``counts`` (by ``(event, step)``) laid out as ``flow``'s funnel; steps no longer in the flow come after its own."""
    steps = [(step.key, step.label) for step in flow.steps] if flow is not None else []
    known = {key for key, _ in steps}
    steps += [(key, f"{key} (no longer asked)") for event, key in sorted(counts) if event == "step" and key not in known]
    lines = [("started", "", "Started")]
    lines += [("step", key, label) for key, label in steps]
    lines += [("completed", "", "Completed"), ("cancelled", "", "Cancelled"), ("expired", "", "Expired")]
    started = counts[("started", "")]
    longest = max([counts[(event, step)] for event, step, _ in lines] + [1])
    bars = tuple(
        FunnelBar(
            event, step, label, counts[(event, step)],
            round(100 * counts[(event, step)] / started) if started else None,
            n * ROW_HEIGHT, round(BAR_WIDTH * counts[(event, step)] / longest),
        )
        for n, (event, step, label) in enumerate(lines)
    )
    return FlowFunnel(name, flow.title if flow is not None else name, bars)


class ConversationsSection:
    """``/conversations``: what is in progress now, and the funnel of every flow over ``?days=`` (1, 7, 30 or 90).

    Args:
        database: Where the conversations and the funnel's counts are.
        registry: The flows, for their steps' order and labels (the bot's own, :func:`build_registry`, unless given).
    """

    def __init__(self, database: Database, registry: Registry | None = None) -> None:
        self._database = database
        self._registry = registry or build_registry()

    def install(self, app: web.Application, pages: ConsolePages) -> None:
        """Add the conversations route."""

        async def overview(request: web.Request) -> web.Response:
            return await self._overview(request, pages)

        app.router.add_get("/conversations", overview)

    async def in_progress(self, pages: ConsolePages) -> list[InProgress]:
        """The conversations not expired, counted by flow and current step, in the flows' and steps' order."""
        c = CONVERSATIONS.c
        query = (
            select(c.conversation_type, c.current_step, func.count())
            .where(c.expires_at > pages.now())
            .group_by(c.conversation_type, c.current_step)
        )
        async with self._database.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        found = [InProgress(str(flow), *self._step_of(str(flow), current), int(count)) for flow, current, count in rows]
        return sorted(found, key=self._order)

    async def funnels(self, days: int, pages: ConsolePages) -> list[FlowFunnel]:
        """Every flow's funnel over the last ``days`` UTC days (today included): the bot's flows, then any others counted."""
        since = pages.now().astimezone(UTC).date() - timedelta(days=days - 1)
        counts = await funnel_counts(self._database, since)
        names = [entry.flow.name for entry in self._registry.flows]
        names += sorted(name for name in counts if name not in names)
        return [funnel_of(self._flow(name), name, counts.get(name, Counter())) for name in names]

    async def _overview(self, request: web.Request, pages: ConsolePages) -> web.Response:
        raw = request.query.get("days", "")
        days = int(raw) if raw.isdigit() and int(raw) in PERIODS else DEFAULT_DAYS
        live = await self.in_progress(pages)
        return pages.page(
            request, "conversations.html", "conversations", in_progress=live, live_total=sum(row.count for row in live),
            funnels=await self.funnels(days, pages), days=days, periods=PERIODS, label_width=LABEL_WIDTH,
        )

    def _flow(self, name: str) -> Flow | None:
        entry = self._registry.flow_named(name)
        return entry.flow if entry is not None else None

    def _step_of(self, flow_name: str, current_step: str | None) -> tuple[str, str]:
        """The step key and its label for a ``current_step`` of ``"flow:step_key"``."""
        key = (current_step or "").partition(":")[2]
        flow = self._flow(flow_name)
        if not key:
            return "", "(no question pending)"
        try:
            return key, flow.step(key).label if flow is not None else key
        except KeyError:
            return key, f"{key} (no longer asked)"

    def _order(self, row: InProgress) -> tuple[int, int, str, str]:
        names = [entry.flow.name for entry in self._registry.flows]
        flow = self._flow(row.flow)
        keys = [step.key for step in flow.steps] if flow is not None else []
        return (
            names.index(row.flow) if row.flow in names else len(names),
            keys.index(row.step) if row.step in keys else len(keys),
            row.flow,
            row.step,
        )
