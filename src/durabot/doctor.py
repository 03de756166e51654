"""``durabot doctor``: the health checks an operator runs before and after a deploy, each one a :class:`Finding`.

Every check reads counts, ages and states only: no user's answers or message texts, no
secrets. A check that cannot run (the database is away, a table is missing, a query fails)
says so in its own finding instead of stopping the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from alembic.script import ScriptDirectory
from sqlalchemy import case, func, inspect, select, text
from sqlalchemy.engine import Connection, make_url
from telegram import WebhookInfo
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError

from durabot.bootstrap import App
from durabot.engine.runner import FAILED
from durabot.journal.store import JOURNAL_SET_ASIDE, JOURNAL_STEPS, Depth
from durabot.outbox import UNFINISHED_VALUES, OutboxStatus
from durabot.redaction import redact
from durabot.storage.availability import describe
from durabot.storage.database import Database
from durabot.storage.inbox import UPDATES
from durabot.storage.leader import POLLER_LOCK_KEY
from durabot.storage.migrate import alembic_config, current_revision, head_revision
from durabot.storage.repositories import OUTBOX
from durabot.transport.telegram import bot_id_of, make_bot

STUCK_INBOX_AFTER = timedelta(minutes=5)
"""An update still unapplied this long after it arrived is stuck."""

FAILED_UPDATES_WINDOW = timedelta(hours=24)
"""How far back failed updates are counted."""

DEAD_LETTERS_WINDOW = timedelta(hours=24)
"""Dead letters younger than this make the doctor red; older ones only warn."""

OUTBOX_STALE_AFTER = timedelta(minutes=5)
"""A reply still unsent this long after it was queued means the relay is not keeping up (or not running)."""

CHECK_TIMEOUT_SECONDS = 15.0
"""A check that takes longer than this is a problem in itself (a database or Bot API that does not answer)."""



class Status(StrEnum):
    """How a check came out; only :attr:`PROBLEM` makes ``durabot doctor`` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    PROBLEM = "problem"


@dataclass(frozen=True)
class Finding:
    """One check's result: its name, its status and a short line of counts and ages."""

    name: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        """The finding as JSON-ready strings."""
        return {"name": self.name, "status": self.status.value, "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    """What a check function concludes; :class:`Check` names it."""

    status: Status
    detail: str


@dataclass(frozen=True)
class Context:
    """What every check may read: the app, when the run started, the tables found (``None``: no database)."""

    app: App
    now: datetime
    tables: frozenset[str] | None


@dataclass(frozen=True)
class Check:
    """A named check and what it needs: the database reachable (``needs_database``) and these ``tables`` in it.

    ``silent`` is the status of a check that does not answer within :data:`CHECK_TIMEOUT_SECONDS`.
    """

    name: str
    run: Callable[[Context], Awaitable[Verdict]]
    needs_database: bool = True
    tables: tuple[str, ...] = ()
    silent: Status = Status.PROBLEM

    async def __call__(self, context: Context) -> Finding:
        """Run the check, or say why it was not run; a failure to check is a problem, never an exception."""
        skipped = self._not_runnable(context)
        if skipped is not None:
            return Finding(self.name, Status.WARN, skipped)
        try:
            verdict = await asyncio.wait_for(self.run(context), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return Finding(self.name, self.silent, f"no answer within {CHECK_TIMEOUT_SECONDS:g} s")
        except Exception as error:
            return Finding(self.name, Status.PROBLEM, f"could not check: {describe(error)}")
        return Finding(self.name, verdict.status, redact(verdict.detail))

    def _not_runnable(self, context: Context) -> str | None:
        if not self.needs_database:
            return None
        if context.tables is None:
            return "not checked: the database cannot be reached"
        missing = [table for table in self.tables if table not in context.tables]
        if missing:
            return f"not checked: no {' or '.join(missing)} table (run durabot migrate)"
        return None


def age(delta: timedelta) -> str:
    """``45s``, ``12m``, ``3h 05m`` or ``2d 04h``: a duration at a glance."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes}m"
    if days == 0:
        return f"{hours}h {minutes % 60:02d}m"
    return f"{days}d {hours % 24:02d}h"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 row``, ``3 rows``."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


# -- the database ---------------------------------------------------------------------------------


def sqlite_file(database: Database) -> Path | None:
    """The file of a SQLite database given by path (``None`` for PostgreSQL, memory or URI forms)."""
    if not database.is_sqlite:
        return None
    name = make_url(database.url).database or ""
    if name in ("", ":memory:") or name.startswith("file:"):
        return None
    return Path(name).expanduser()


def where(database: Database) -> str:
    """Which database this is, without its password: ``PostgreSQL 127.0.0.1:5432/durabot`` or the SQLite file."""
    url = make_url(database.url)
    if database.is_sqlite:
        return f"SQLite {url.database}"
    port = f":{url.port}" if url.port else ""
    return f"PostgreSQL {url.host or 'localhost'}{port}/{url.database or ''}"


async def table_names(database: Database) -> frozenset[str]:
    """The tables in the database, which also proves it answers."""

    def _names(connection: Connection) -> frozenset[str]:
        return frozenset(inspect(connection).get_table_names())

    async with database.engine.connect() as connection:
        return await connection.run_sync(_names)


async def check_database(app: App) -> tuple[Finding, frozenset[str] | None]:
    """Whether the database answers (a clear one-line reason if not), and the tables it has."""
    database = app.database
    file = sqlite_file(database)
    if file is not None and not file.exists():  # connecting would create an empty file
        return Finding("database", Status.PROBLEM, f"SQLite file {file} does not exist"), None
    try:
        tables = await asyncio.wait_for(table_names(database), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        silent = f"{where(database)}: no answer within {CHECK_TIMEOUT_SECONDS:g} s"
        return Finding("database", Status.PROBLEM, silent), None
    except Exception as error:
        return Finding("database", Status.PROBLEM, redact(f"{where(database)}: {describe(error)}")), None
    return Finding("database", Status.OK, f"{where(database)} answers ({plural(len(tables), 'table')})"), tables


# -- the checks -----------------------------------------------------------------------------------


def known_revisions() -> frozenset[str]:
    """Every revision durabot's migrations know."""
    return frozenset(script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


async def migrations(context: Context) -> Verdict:
    """The database is at the head revision; behind, ahead (a newer durabot migrated it) or unmigrated is a problem."""
    current, head = await current_revision(context.app.database), head_revision()
    if current == head:
        return Verdict(Status.OK, f"at head {head}")
    if current is None:
        return Verdict(Status.PROBLEM, f"not migrated (head is {head}; run durabot migrate)")
    if current not in known_revisions():
        newer = f"at {current}, unknown to this durabot (head is {head}): a newer version migrated it"
        return Verdict(Status.PROBLEM, newer)
    return Verdict(Status.PROBLEM, f"at {current}, head is {head} (run durabot migrate)")


async def orphans(context: Context) -> Verdict:
    """Intake progress rows without their case (G7); any is a problem."""
    async with context.app.uow_factory() as uow:
        found = await uow.domains.intake.orphans()
    if not found:
        return Verdict(Status.OK, "none: every intake progress row has its case")
    rows = plural(len(found), "intake progress row")
    return Verdict(Status.PROBLEM, f"{rows} without a case (see durabot repair orphans --dry-run)")


async def inbox(context: Context) -> Verdict:
    """Updates not applied yet; any waiting longer than :data:`STUCK_INBOX_AFTER` is a problem."""
    stuck_before = context.now - STUCK_INBOX_AFTER
    query = select(
        func.count(),
        func.sum(case((UPDATES.c.received_at < stuck_before, 1), else_=0)),
        func.min(UPDATES.c.received_at),
    ).where(UPDATES.c.processed_at.is_(None))
    async with context.app.database.engine.connect() as connection:
        waiting, stuck, oldest = (await connection.execute(query)).one()
    if not waiting:
        return Verdict(Status.OK, "no update waiting")
    oldest_age = age(context.now - oldest)
    if stuck:
        return Verdict(
            Status.PROBLEM,
            f"{plural(int(stuck), 'update')} unapplied for more than {age(STUCK_INBOX_AFTER)}, oldest {oldest_age} "
            f"({waiting} waiting in all)",
        )
    return Verdict(Status.OK, f"{plural(waiting, 'update')} waiting, oldest {oldest_age}")


async def failed_updates(context: Context) -> Verdict:
    """Updates that failed (the user got an apology) within :data:`FAILED_UPDATES_WINDOW`: a warning."""
    since = context.now - FAILED_UPDATES_WINDOW
    query = select(func.count()).where(UPDATES.c.outcome == FAILED, UPDATES.c.processed_at >= since)
    async with context.app.database.engine.connect() as connection:
        failed = int(await connection.scalar(query) or 0)
    window = f"{FAILED_UPDATES_WINDOW.total_seconds() / 3600:g} h"
    if not failed:
        return Verdict(Status.OK, f"none in the last {window}")
    detail = f"{plural(failed, 'update')} failed in the last {window} (logged as engine.step_failed)"
    return Verdict(Status.WARN, detail)


async def outbox(context: Context) -> Verdict:
    """Replies still to send; the oldest waiting longer than :data:`OUTBOX_STALE_AFTER` is a problem."""
    query = select(func.count(), func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status.in_(UNFINISHED_VALUES))
    async with context.app.database.engine.connect() as connection:
        unsent, oldest = (await connection.execute(query)).one()
    if not unsent:
        return Verdict(Status.OK, "no reply waiting")
    waited = context.now - oldest
    detail = f"{plural(unsent, 'reply', 'replies')} unsent, oldest {age(waited)}"
    if waited > OUTBOX_STALE_AFTER:
        return Verdict(Status.PROBLEM, f"{detail}: the relay is behind or not running")
    return Verdict(Status.OK, detail)


async def dead_letters(context: Context) -> Verdict:
    """Replies given up on (blocked by the user, rejected by Telegram): a problem if one is recent, else a warning.

    A user who blocks the bot leaves one for good, so only those of the last :data:`DEAD_LETTERS_WINDOW`
    make the doctor red; older ones are still listed.
    """
    recent_since = context.now - DEAD_LETTERS_WINDOW
    query = select(
        func.count(), func.sum(case((OUTBOX.c.created_at >= recent_since, 1), else_=0)), func.max(OUTBOX.c.created_at)
    ).where(OUTBOX.c.status == OutboxStatus.DEAD.value)
    async with context.app.database.engine.connect() as connection:
        dead, recent, newest = (await connection.execute(query)).one()
    if not dead:
        return Verdict(Status.OK, "none")
    detail = (
        f"{plural(dead, 'reply', 'replies')} given up on, newest queued {age(context.now - newest)} ago "
        "(outbox_messages.last_error says why)"
    )
    return Verdict(Status.PROBLEM if recent else Status.WARN, detail)


def advisory_lock_parts(key: int) -> tuple[int, int]:
    """How ``pg_locks`` shows a 64-bit advisory key: ``classid`` (its high 32 bits) and ``objid`` (its low 32 bits)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


LEASE_HOLDER = text(  # who holds the polling lease: the console's health page asks too
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND classid = :classid AND objid = :objid AND objsubid = 1"
)


async def poller_lease(context: Context) -> Verdict:
    """Which session holds the poller's advisory lock (PostgreSQL); nobody is a warning, fine in webhook mode."""
    database = context.app.database
    if not database.is_postgresql:
        return Verdict(Status.OK, "not applicable on SQLite (no lease)")
    classid, objid = advisory_lock_parts(POLLER_LOCK_KEY)
    async with database.engine.connect() as connection:
        pid = await connection.scalar(LEASE_HOLDER, {"classid": classid, "objid": objid})
    if pid is None:
        return Verdict(Status.WARN, "nobody polls (fine if webhook mode or no worker runs)")
    return Verdict(Status.OK, f"held by pid {pid}")


async def webhook(context: Context) -> Verdict:
    """What Telegram says of the bot's webhook; an unreachable Bot API is a warning, a rejected token a problem."""
    settings = context.app.settings
    if settings.telegram_bot_token is None:
        return Verdict(Status.OK, "not checked: no TELEGRAM_BOT_TOKEN (the local sandbox is used)")
    token = settings.telegram_bot_token.get_secret_value()
    bot = make_bot(token, settings.telegram_api_base_url)
    try:
        await bot.initialize()
        info = await bot.get_webhook_info()
    except InvalidToken:
        return Verdict(Status.PROBLEM, f"the Bot API rejected the token of bot {bot_id_of(token)}")
    except BadRequest as error:
        return Verdict(Status.WARN, f"the Bot API refused getWebhookInfo: {error.message}")
    except NetworkError as error:
        return Verdict(Status.WARN, f"the Bot API cannot be reached: {error.message}")
    except TelegramError as error:
        return Verdict(Status.WARN, f"the Bot API answered {type(error).__name__}: {error.message}")
    finally:
        with contextlib.suppress(Exception):
            await bot.shutdown()
    return webhook_verdict(info, settings.webhook_url, context.now)


def webhook_verdict(info: WebhookInfo, expected_url: str | None, now: datetime) -> Verdict:
    """Read Telegram's webhook info against the ``WEBHOOK_URL`` setting (``None``: durabot polls)."""
    warnings: list[str] = []
    if not info.url:
        parts = ["no webhook (long polling)"]
        if expected_url:
            warnings.append("WEBHOOK_URL is set: durabot run sets it at start")
    elif info.url == expected_url:
        parts = ["webhook set to WEBHOOK_URL"]
    else:
        parts = ["a webhook is set"]
        polling = "WEBHOOK_URL is unset: durabot run removes it at start"
        warnings.append("not WEBHOOK_URL's" if expected_url else polling)
    parts.append(f"{plural(info.pending_update_count, 'update')} pending at Telegram")
    if info.last_error_message:
        when = f" {age(now - info.last_error_date)} ago" if info.last_error_date else ""
        warnings.append(f"last error{when}: {info.last_error_message}")
    return Verdict(Status.WARN if warnings else Status.OK, "; ".join(parts + warnings))


def journal_depth(path: Path) -> Depth:
    """The journal's depth read straight from its file, read-only (a running worker holds the journal itself)."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as connection:
        steps = connection.execute(f"SELECT count(*) FROM {JOURNAL_STEPS.name}").fetchone()[0]
        updates = connection.execute(f"SELECT count(*) FROM {UPDATES.name}").fetchone()[0]
        unsent = connection.execute(
            f"SELECT count(*) FROM {OUTBOX.name} WHERE status IN (?, ?)", UNFINISHED_VALUES
        ).fetchone()[0]
    return Depth(int(steps), int(updates), int(unsent))


def journal_set_aside(path: Path) -> int:
    """Steps the replay could not write into the primary, kept in the journal for an operator."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as connection:
        known = connection.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (JOURNAL_SET_ASIDE.name,)).fetchone()
        return int(connection.execute(f"SELECT count(*) FROM {JOURNAL_SET_ASIDE.name}").fetchone()[0]) if known else 0


async def outage_journal(context: Context) -> Verdict:
    """What the local outage journal holds that the primary does not have yet: anything is a warning."""
    path = context.app.settings.journal_file
    if context.app.outage is None or path is None:
        return Verdict(Status.OK, "not applicable: outage mode is off (SQLite primary, or JOURNAL_PATH empty)")
    if not path.exists():
        return Verdict(Status.OK, f"no journal file at {path} yet")
    try:
        depth = await asyncio.to_thread(journal_depth, path)
        set_aside = await asyncio.to_thread(journal_set_aside, path)
    except sqlite3.Error as error:
        return Verdict(Status.WARN, f"cannot read {path}: {type(error).__name__}: {error}")
    if set_aside:
        return Verdict(
            Status.WARN,
            f"{path}: {plural(set_aside, 'step')} the replay could not write into the primary, kept in "
            f"{JOURNAL_SET_ASIDE.name} (logged as journal.replay_set_aside)",
        )
    if depth.empty and not depth.unsent:
        return Verdict(Status.OK, f"{path}: nothing to replay")
    return Verdict(
        Status.WARN,
        f"{path}: {plural(depth.steps, 'step')} and {plural(depth.updates, 'update')} to replay into the primary, "
        f"{plural(depth.unsent, 'reply', 'replies')} unsent (keep this file)",
    )


CHECKS: tuple[Check, ...] = (
    Check("migrations", migrations),
    Check("orphans", orphans, tables=("cases", "case_intake_progress")),
    Check("inbox", inbox, tables=(UPDATES.name,)),
    Check("failed updates", failed_updates, tables=(UPDATES.name,)),
    Check("outbox", outbox, tables=(OUTBOX.name,)),
    Check("dead letters", dead_letters, tables=(OUTBOX.name,)),
    Check("poller lease", poller_lease),
    Check("webhook", webhook, needs_database=False, silent=Status.WARN),  # an unreachable Bot API is a warning
    Check("outage journal", outage_journal, needs_database=False),
)
"""Every check after the database's own, in the order they are shown."""

CHECK_NAMES: tuple[str, ...] = ("database", *(check.name for check in CHECKS))


async def diagnose(app: App, checks: Sequence[Check] = CHECKS) -> list[Finding]:
    """Run the database check, then each of ``checks`` in turn, against ``app``."""
    reached, tables = await check_database(app)
    context = Context(app, app.clock(), tables)
    return [reached, *[await check(context) for check in checks]]


def healthy(findings: Sequence[Finding]) -> bool:
    """No finding is a problem (warnings are fine)."""
    return all(finding.status is not Status.PROBLEM for finding in findings)
