"""The console's Health page: orphans, backlogs, failed updates and dead letters with their actions, lease, journal, last hour."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import Histogram
from sqlalchemy import ColumnElement, Text, and_, cast, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.config import Settings
from durabot.console.metrics import Metrics
from durabot.console.web import OPERATOR_KEY, ConsolePages
from durabot.doctor import LEASE_HOLDER, advisory_lock_parts, age, journal_depth, journal_set_aside, where
from durabot.engine.runner import APPLIED, FAILED
from durabot.outbox import UNFINISHED, OutboxStatus
from durabot.redaction import redact
from durabot.storage.availability import describe
from durabot.storage.case_repositories import CASES, PROGRESS
from durabot.storage.database import Database
from durabot.storage.inbox import IGNORED, UPDATES
from durabot.storage.leader import POLLER_LOCK_KEY
from durabot.storage.repositories import OUTBOX

FAILED_WINDOW = timedelta(days=7)
"""How far back failed updates are listed (an update's identity is kept that long)."""

LISTED = 100
"""At most this many failed updates and dead letters are listed, newest first (the counts are of all)."""

ERROR_SHOWN = 300
"""How much of a stored error is shown."""

MINUTES = 60
READ_TIMEOUT_SECONDS = 5.0

CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 600, 80, 2
_UNSENT = tuple(status.value for status in UNFINISHED)
_u, _o = UPDATES.c, OUTBOX.c
_HAS_EVENT = and_(_u.event.is_not(None), cast(_u.event, Text) != "null")
"""The update still has its event (the retention drops it after 48 h), so the engine can apply it again."""


@dataclass(frozen=True)
class Backlog:
    """Rows waiting, and how long the oldest has waited (``None``: nothing waits)."""

    count: int
    oldest: str | None


@dataclass(frozen=True)
class FailedUpdate:
    """A failed inbox row; ``retryable`` unless its event was already dropped (after 48 h) or it has no chat."""

    id: int
    update_id: int
    chat_id: int | None
    failed_at: datetime | None
    error: str
    retryable: bool


@dataclass(frozen=True)
class DeadLetter:
    """A reply given up on."""

    id: int
    chat_id: int
    method: str
    queued_at: datetime
    attempts: int
    error: str


@dataclass(frozen=True)
class Bar:
    """One minute of a chart."""

    x: int
    y: int
    width: int
    height: int
    minute: str
    count: int


@dataclass(frozen=True)
class Series:
    """A count per minute over the last hour, as bars of an SVG chart."""

    bars: tuple[Bar, ...]
    total: int
    peak: int
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT


@dataclass(frozen=True)
class Report:
    """Everything the Health page shows; ``problem`` is why the database could not be read (the rest is then empty)."""

    database: str
    problem: str | None
    orphans: int = 0
    inbox: Backlog = Backlog(0, None)
    failed: tuple[FailedUpdate, ...] = ()
    failed_total: int = 0
    outbox: Backlog = Backlog(0, None)
    dead: tuple[DeadLetter, ...] = ()
    dead_total: int = 0
    leader: str = ""
    steps: Series | None = None
    replies: Series | None = None


class HealthSection:
    """The Health page and its actions (``/health``, ``/health/updates/{id}/retry|discard``, ``/health/dead/{id}/resend``).

    Args:
        database: The bot's database.
        settings: Where the outage journal is (``journal_file``).
        metrics: This process's metrics, for the step latency; ``None`` if it measures none.
    """

    def __init__(self, database: Database, settings: Settings, metrics: Metrics | None = None) -> None:
        self._database = database
        self._settings = settings
        self._metrics = metrics
        self._pages: ConsolePages | None = None

    def install(self, app: web.Application, pages: ConsolePages) -> None:
        """Add the page and its three POST actions to ``app``."""
        self._pages = pages
        app.router.add_get("/health", self._page)
        app.router.add_post(r"/health/updates/{row_id:\d+}/retry", self._retry)
        app.router.add_post(r"/health/updates/{row_id:\d+}/discard", self._discard)
        app.router.add_post(r"/health/dead/{row_id:\d+}/resend", self._resend)

    @property
    def _console(self) -> ConsolePages:
        assert self._pages is not None, "install() first"
        return self._pages

    # -- the page ------------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        now = self._console.now()
        report, journal = await asyncio.gather(self.report(now), self.journal())
        return self._console.page(
            request, "health.html", "health", report=report, journal=journal, latency=self.latency(),
        )

    async def report(self, now: datetime) -> Report:
        """Read the database's figures at ``now``; a database that does not answer gives the one-line reason."""
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                async with self._database.engine.connect() as connection:
                    return await self._read(connection, now)
        except TimeoutError:
            return Report(where(self._database), f"no answer within {READ_TIMEOUT_SECONDS:g} s")
        except Exception as error:
            return Report(where(self._database), redact(describe(error)))

    async def _read(self, connection: AsyncConnection, now: datetime) -> Report:
        pending = (await connection.execute(
            select(func.count(), func.min(_u.received_at)).where(_u.processed_at.is_(None))
        )).one()
        unsent = (await connection.execute(
            select(func.count(), func.min(_o.created_at)).where(_o.status.in_(_UNSENT))
        )).one()
        orphans = await connection.scalar(
            select(func.count()).select_from(PROGRESS).where(
                ~select(CASES.c.case_id).where(CASES.c.case_id == PROGRESS.c.case_id).exists()
            )
        )
        failed_where = (_u.outcome == FAILED, _u.processed_at >= now - FAILED_WINDOW)
        failed_total = await connection.scalar(select(func.count()).select_from(UPDATES).where(*failed_where))
        failed = (await connection.execute(
            select(_u.id, _u.update_id, _u.chat_id, _u.processed_at, _u.error, _HAS_EVENT.label("has_event"))
            .where(*failed_where).order_by(_u.processed_at.desc(), _u.id.desc()).limit(LISTED)
        )).all()
        dead_where = _o.status == OutboxStatus.DEAD.value
        dead_total = await connection.scalar(select(func.count()).select_from(OUTBOX).where(dead_where))
        dead = (await connection.execute(
            select(_o.id, _o.chat_id, _o.method, _o.created_at, _o.attempts, _o.last_error)
            .where(dead_where).order_by(_o.id.desc()).limit(LISTED)
        )).all()
        first_minute = now.replace(second=0, microsecond=0) - timedelta(minutes=MINUTES - 1)
        steps = await self._per_minute(connection, _u.processed_at, first_minute, _u.outcome == APPLIED)
        replies = await self._per_minute(connection, _o.sent_at, first_minute, _o.status == OutboxStatus.SENT.value)
        return Report(
            database=where(self._database),
            problem=None,
            orphans=int(orphans or 0),
            inbox=Backlog(int(pending[0]), age(now - pending[1]) if pending[1] is not None else None),
            failed=tuple(
                FailedUpdate(row.id, row.update_id, row.chat_id, row.processed_at, _shown(row.error),
                             bool(row.has_event) and row.chat_id is not None)
                for row in failed
            ),
            failed_total=int(failed_total or 0),
            outbox=Backlog(int(unsent[0]), age(now - unsent[1]) if unsent[1] is not None else None),
            dead=tuple(
                DeadLetter(row.id, row.chat_id, row.method, row.created_at, row.attempts, _shown(row.last_error))
                for row in dead
            ),
            dead_total=int(dead_total or 0),
            leader=await self._leader(connection),
            steps=chart(first_minute, steps),
            replies=chart(first_minute, replies),
        )

    async def _per_minute(
        self, connection: AsyncConnection, column: Any, since: datetime, *where: ColumnElement[bool]
    ) -> dict[str, int]:
        """Rows with ``column`` at or after ``since``, counted by UTC minute (``YYYY-MM-DD HH:MM``)."""
        if self._database.is_postgresql:
            minute = func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")
        else:
            minute = func.strftime("%Y-%m-%d %H:%M", column)
        query = select(minute.label("minute"), func.count()).where(column >= since, *where).group_by(minute)
        return {str(key): int(count) for key, count in (await connection.execute(query)).all()}

    async def _leader(self, connection: AsyncConnection) -> str:
        """Who holds the poller's advisory lock (PostgreSQL)."""
        if not self._database.is_postgresql:
            return "not applicable on SQLite (no lease: the one process polls)"
        classid, objid = advisory_lock_parts(POLLER_LOCK_KEY)
        pid = await connection.scalar(LEASE_HOLDER, {"classid": classid, "objid": objid})
        if pid is None:
            return "nobody holds the poller lease (fine in webhook mode, or when no worker runs)"
        who = (await connection.execute(
            text("SELECT application_name, client_addr, backend_start FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )).first()
        parts = [f"PostgreSQL backend pid {pid}"]
        if who is not None:
            if who.application_name:
                parts.append(f"application {who.application_name!r}")
            if who.client_addr is not None:
                parts.append(f"from {who.client_addr}")
            if who.backend_start is not None:
                parts.append(f"connected since {who.backend_start.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
        return ", ".join(parts)

    async def journal(self) -> str:
        """What the outage journal holds that the primary does not have yet, read from its file."""
        path = self._settings.journal_file
        if path is None:
            return "not applicable: no outage journal (SQLite primary, or JOURNAL_PATH empty)"
        if not path.exists():
            return f"no journal file at {path} yet"
        try:
            depth = await asyncio.to_thread(journal_depth, path)
            set_aside = await asyncio.to_thread(journal_set_aside, path)
        except sqlite3.Error as error:
            return f"cannot read {path}: {type(error).__name__}"
        return (
            f"{path}: {depth.steps} steps and {depth.updates} updates to replay, {depth.unsent} replies unsent, "
            f"{set_aside} steps set aside"
        )

    def latency(self) -> str:
        """The median and 95th percentile of this process's step latencies over the last hour."""
        if self._metrics is None:
            return "not measured in this process"
        recent = self._metrics.recent_latency()
        if recent is None:
            return "no step measured in this process in the last hour"
        p50, p95, count = recent
        return f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (over {count} steps in the last hour, this process)"

    # -- the actions ---------------------------------------------------------------------------

    async def _retry(self, request: web.Request) -> web.StreamResponse:
        """Make a failed update pending again, so that the engine applies it (in its chat's ``update_id`` order)."""
        row_id = int(request.match_info["row_id"])
        retryable = (_u.id == row_id, _u.outcome == FAILED, _HAS_EVENT, _u.chat_id.is_not(None))
        reset = update(UPDATES).where(*retryable).values(processed_at=None, outcome=None, error=None)
        row = await self._change(reset.returning(_u.update_id, _u.chat_id), "No failed update to retry there.")
        await self._console.audit(request, "update_retried", f"telegram_updates:{row_id}", update_id=row.update_id,
                                  chat_id=row.chat_id)
        raise web.HTTPSeeOther("/health")

    async def _discard(self, request: web.Request) -> web.StreamResponse:
        """Mark a failed update ignored: it is no longer listed as failed, and never applied."""
        row_id = int(request.match_info["row_id"])
        operator = request[OPERATOR_KEY].name
        mark = update(UPDATES).where(_u.id == row_id, _u.outcome == FAILED).values(
            outcome=IGNORED, error=f"discarded by {operator}"
        )
        row = await self._change(mark.returning(_u.update_id, _u.chat_id), "No failed update to discard there.")
        await self._console.audit(request, "update_discarded", f"telegram_updates:{row_id}", update_id=row.update_id,
                                  chat_id=row.chat_id)
        raise web.HTTPSeeOther("/health")

    async def _resend(self, request: web.Request) -> web.StreamResponse:
        """Put a dead letter back at the head of its chat's queue, due now, with fresh attempts."""
        row_id = int(request.match_info["row_id"])
        revive = update(OUTBOX).where(_o.id == row_id, _o.status == OutboxStatus.DEAD.value).values(
            status=OutboxStatus.PENDING.value, attempts=0, next_attempt_at=self._console.now(), last_error=None
        )
        row = await self._change(revive.returning(_o.chat_id, _o.method), "No dead letter to resend there.")
        await self._console.audit(request, "dead_letter_resent", f"outbox_messages:{row_id}", chat_id=row.chat_id,
                                  method=row.method)
        raise web.HTTPSeeOther("/health")

    async def _change(self, statement: Any, missing: str) -> Any:
        """Run one guarded UPDATE … RETURNING; 404 with ``missing`` when no row was in the expected state."""
        async with self._database.transaction() as connection:
            row = (await connection.execute(statement)).first()
        if row is None:
            raise web.HTTPNotFound(text=missing)
        return row


def _shown(error: str | None) -> str:
    """At most :data:`ERROR_SHOWN` characters of a stored (already redacted) error, redacted once more."""
    if not error:
        return ""
    shown = redact(error)
    return shown if len(shown) <= ERROR_SHOWN else shown[: ERROR_SHOWN - 1] + "…"


def chart(first_minute: datetime, counts: dict[str, int], minutes: int = MINUTES) -> Series:
    """The bars of ``counts`` (by ``YYYY-MM-DD HH:MM``) for the ``minutes`` minutes from ``first_minute``."""
    keys = [f"{first_minute + timedelta(minutes=n):%Y-%m-%d %H:%M}" for n in range(minutes)]
    values = [counts.get(key, 0) for key in keys]
    peak = max(values, default=0)
    step = CHART_WIDTH // minutes
    bars = []
    for n, (key, value) in enumerate(zip(keys, values, strict=True)):
        height = round(value / peak * (CHART_HEIGHT - 2)) if peak else 0
        if value and not height:
            height = 1
        bars.append(Bar(n * step, CHART_HEIGHT - height, step - BAR_GAP, height, key[11:], value))
    return Series(tuple(bars), sum(values), peak)


