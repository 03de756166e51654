"""The long-running service: take updates in, apply them, send replies, expire conversations; stop cleanly.

It runs and stops what :mod:`durabot.bootstrap` built; it constructs no part itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from telegram import Bot
from sqlalchemy.engine import make_url
from telegram.error import NetworkError

from durabot.backoff import Backoff
from durabot.bootstrap import App, Outage, TelegramParts, build_telegram_parts
from durabot.console.photos import TelegramPhotos
from durabot.console.server import ConsoleServer, console_server
from durabot.errors import DurabotError, OperatorError, cannot_listen
from durabot.journal.seed import seed_journal
from durabot.storage.availability import describe, is_unavailable
from durabot.storage.migrate import upgrade
from durabot.transport.connect import initialise_bot
from durabot.transport.polling import ALLOWED_UPDATES
from durabot.transport.telegram import bot_commands, known_username, make_bot
from durabot.transport.webhook import WebhookServer
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.service")

SANDBOX_TOKEN = "1000001:sandbox"
FLUSH_SECONDS = 10.0


async def _every(seconds: float, job: Callable[[], Awaitable[object]], name: str, stop: asyncio.Event) -> None:
    """Run ``job`` now and then every ``seconds`` until ``stop`` is set; a failed run is logged."""
    while not stop.is_set():
        try:
            await job()
        except Exception as error:
            _log_task_failure(name, error, seconds)
        await wait_for_any(stop, timeout=seconds)


def _log_task_failure(task: str, error: Exception, retry_in: float) -> None:
    """A WARNING while the database is unreachable (the work waits); the traceback for anything else."""
    if is_unavailable(error):
        log.warning("service.task_database_unavailable", task=task, retry_in=retry_in, error=describe(error))
    else:
        log.exception("service.task_failed", task=task, retry_in=retry_in)


async def _first_to_end(tasks: dict[str, asyncio.Task[None]], stop: asyncio.Event) -> tuple[str, asyncio.Task[None]] | None:
    """Wait for ``stop`` or for a task to end; returns the task that ended first, or ``None`` on ``stop``."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([stopped, *tasks.values()], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if stop.is_set():
        return None
    return next((name, task) for name, task in tasks.items() if task.done())


class BackgroundTaskError(DurabotError):
    """A background task of the service ended on its own; the process stops (exit status 2) to be restarted."""


class Service:
    """Everything ``durabot run`` does, with an explicit start and a graceful stop."""

    def __init__(self, app: App, announce: Callable[[str], None] = print) -> None:
        self._app = app
        self._announce = announce
        self.webhook: WebhookServer | None = None
        self.console: ConsoleServer | None = None
        self.photos = TelegramPhotos()
        """Machines' photos for the console, fetched through the bot once it is connected."""

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then stop taking updates, finish the step in hand and flush replies.

        Waits for the database first (see :meth:`_migrate_when_reachable`).

        Raises:
            BackgroundTaskError: a background task (intake, processing, relay, cleanup) ended on its
                own; the others are stopped cleanly first. A :class:`DurabotError` that ended a task
                (a port in use, say) is raised as it is.
        """
        async with contextlib.AsyncExitStack() as console:
            await self._start_console(console)  # /healthz answers while the database is still awaited
            await self._run(stop)

    async def _start_console(self, stack: contextlib.AsyncExitStack) -> None:
        """Serve health, readiness and metrics on the admin port, unless ``ADMIN_ENABLED=false``."""
        app, settings = self._app, self._app.settings
        if not settings.admin_enabled or app.health is None or app.metrics is None:
            return
        server = console_server(app, self.photos)
        await server.start()
        self.console = server
        stack.push_async_callback(server.stop)

    async def _run(self, stop: asyncio.Event) -> None:
        app, settings = self._app, self._app.settings
        if not await self._migrate_when_reachable(stop):
            return
        ended: tuple[str, asyncio.Task[None]] | None = None
        refresh_stop = asyncio.Event()
        refreshing = asyncio.create_task(app.metrics.keep_fresh(app.database, refresh_stop, app.clock)) if app.metrics else None
        funnel_stop = asyncio.Event()
        flushing = asyncio.create_task(app.funnel.keep_flushing(app.database, funnel_stop)) if app.funnel else None
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self._stop_refreshing, refreshing, refresh_stop)
            stack.push_async_callback(self._stop_flushing, flushing, funnel_stop)
            bot = await self._connect_bot(stack, stop)
            if bot is None:
                return
            parts = build_telegram_parts(app, bot)
            relay, intake_stop, share_stop = parts.relay, asyncio.Event(), asyncio.Event()
            outage_stop = asyncio.Event()
            outage_task = await self._open_journal(outage_stop)
            tasks = {
                "relay": asyncio.create_task(relay.run()),
                "send_rate": asyncio.create_task(parts.rate_share.run(share_stop)),
                "processing": asyncio.create_task(self._process(stop)),
                "cleanup": asyncio.create_task(_every(settings.cleanup_interval_seconds, app.engine.cleanup, "cleanup", stop)),
                "intake": asyncio.create_task(self._intake(bot, parts, intake_stop)),
            }
            log.info("service.started", database=app.database.dialect, mode="webhook" if settings.webhook_url else "polling")
            ended = await _first_to_end(tasks, stop)
            if ended is not None:
                self._report_ended(*ended)
                stop.set()

            log.info("service.stopping")
            if app.health is not None:
                app.health.intake = "stopped"
            intake_stop.set()
            tasks["intake"].cancel()
            await asyncio.gather(tasks["intake"], return_exceptions=True)
            if self.webhook is not None:
                await self.webhook.stop()
            await asyncio.gather(tasks["processing"], tasks["cleanup"], return_exceptions=True)
            outage_stop.set()
            if outage_task is not None:
                await asyncio.gather(outage_task, return_exceptions=True)
            if app.outage is not None:
                await asyncio.to_thread(app.outage.mirror.stop)
            relay.stop()
            await asyncio.gather(tasks["relay"], return_exceptions=True)
            await relay.flush(FLUSH_SECONDS)
            share_stop.set()  # unregistered only now: the flush above still sent within this relay's share
            await asyncio.gather(tasks["send_rate"], return_exceptions=True)
        log.info("service.stopped")
        if ended is not None:
            name, task = ended
            cause = None if task.cancelled() else task.exception()
            if isinstance(cause, DurabotError):
                raise cause  # already says what went wrong and what to do
            raise BackgroundTaskError(f"the {name} task stopped unexpectedly: {cause or 'it returned'}") from cause

    @staticmethod
    async def _stop_refreshing(task: asyncio.Task[None] | None, stop: asyncio.Event) -> None:
        stop.set()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def _stop_flushing(self, task: asyncio.Task[None] | None, stop: asyncio.Event) -> None:
        """Stop the funnel's flushes, then add what was counted since the last one."""
        await self._stop_refreshing(task, stop)
        if self._app.funnel is not None:
            await self._app.funnel.flush(self._app.database)

    async def _open_journal(self, stop: asyncio.Event) -> asyncio.Task[None] | None:
        """Open the outage journal and start its write-through and monitor; without it the service runs as before.

        A journal that cannot be opened (another process has the file, the disk refuses it) is
        logged as ``journal.unavailable``: this process then has no outage mode.
        """
        outage = self._app.outage
        if outage is None:
            return None
        url = make_url(self._app.settings.database_url)
        try:
            await outage.journal.open(f"{url.host}:{url.port or 5432}/{url.database}")
        except Exception as error:
            log.warning("journal.unavailable", journal=str(outage.journal.path), error=f"{type(error).__name__}: {error}")
            return None
        outage.mirror.start()
        log.info("journal.ready", journal=str(outage.journal.path), grace_seconds=self._app.settings.outage_grace_seconds)
        return asyncio.create_task(self._watch_outages(outage, stop))

    async def _watch_outages(self, outage: Outage, stop: asyncio.Event) -> None:
        """Seed the journal from the primary while the monitor watches it, until ``stop``."""

        async def seed() -> None:
            try:
                await seed_journal(self._app.database, outage.mirror, self._app.clock())
            except Exception as error:
                log.warning("journal.seed_failed", error=describe(error))

        seeding = asyncio.create_task(seed())
        try:
            await outage.monitor.run(stop)
        finally:
            seeding.cancel()
            await asyncio.gather(seeding, return_exceptions=True)

    async def _migrate_when_reachable(self, stop: asyncio.Event) -> bool:
        """Migrate the database; while it is down or starting up, log a WARNING and try again after a pause.

        Returns ``False`` if ``stop`` was set before the database could be reached. Permanent
        errors (unknown database or role, wrong password) are raised as the driver reported them.
        """
        backoff = Backoff(first=0.5, cap=5.0)
        while not stop.is_set():
            try:
                await upgrade(self._app.database)
                return True
            except Exception as error:
                if not is_unavailable(error):
                    raise
                pause = backoff.next()
                log.warning(
                    "service.database_unavailable", attempt=backoff.failures, retry_in=pause, error=describe(error)
                )
                await wait_for_any(stop, timeout=pause)
        return False

    @staticmethod
    def _report_ended(name: str, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if error is None:
            log.error("service.task_died", task=name, reason="returned" if not task.cancelled() else "cancelled")
        else:
            trace = None if isinstance(error, OperatorError) else error  # an operator's problem is said in one line
            log.error("service.task_died", task=name, reason=type(error).__name__, exc_info=trace)

    async def _connect_bot(self, stack: contextlib.AsyncExitStack, stop: asyncio.Event) -> Bot | None:
        """The Bot API client, ready; ``None`` if ``stop`` was set while the server could not be reached.

        Without a token it starts the local sandbox first. Each failed try to reach the server
        is logged at WARNING (see :func:`~durabot.transport.connect.initialise_bot`).

        Raises:
            ConfigurationError: the sandbox port is taken, or the server rejected the token.
        """
        settings = self._app.settings
        base_url = settings.telegram_api_base_url
        token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else SANDBOX_TOKEN
        if settings.uses_sandbox:
            from durabot.sandbox import Sandbox

            host, port = settings.sandbox_host, settings.sandbox_port
            try:
                sandbox = await stack.enter_async_context(Sandbox(host, port))
            except OSError as error:
                raise cannot_listen(error, host, port, "SANDBOX_PORT") from None
            base_url = sandbox.url
            self._announce(f"No TELEGRAM_BOT_TOKEN: running against the local sandbox. Chat with the bot at {sandbox.chat_page_url}")
        bot = make_bot(token, base_url)
        stack.push_async_callback(bot.shutdown)  # also when initialising fails: its HTTP sessions are open by then
        if not await initialise_bot(bot, base_url, stop):
            return None
        self._app.engine_registry.bot_username = known_username(bot)  # for links from a group to the private chat
        try:
            await bot.set_my_commands(bot_commands(self._app.engine_registry))
        except Exception as error:
            log.warning("service.set_commands_failed", error=f"{type(error).__name__}: {error}")
        log.info("service.bot_ready", username=bot.username, api=base_url)
        self.photos.bot = bot
        return bot

    async def _intake(self, bot: Bot, parts: TelegramParts, stop: asyncio.Event) -> None:
        """Take updates in: the webhook server, or a poller once this process holds the polling lease."""
        settings = self._app.settings
        if parts.webhook is not None:
            assert settings.webhook_url is not None and settings.webhook_secret is not None
            self.webhook = parts.webhook
            await self.webhook.start()
            if self._app.health is not None:
                self._app.health.intake = "webhook"
            secret = settings.webhook_secret.get_secret_value()
            await bot.set_webhook(settings.webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
            await stop.wait()
            return
        await self._poll_while_leader(bot, parts, stop)

    async def _poll_while_leader(self, bot: Bot, parts: TelegramParts, stop: asyncio.Event) -> None:
        """Poll whenever this process holds the lease; step down when it is lost and wait to take it again."""
        assert parts.lease is not None and parts.new_poller is not None
        lease, observer, backoff = parts.lease, self._app.observers, Backoff(first=1.0, cap=30.0)
        if self._app.health is not None:
            self._app.health.intake = "standby"  # waiting for the lease; polling once it has it
        while await lease.acquire(stop):
            pause = 0.0
            observer.leadership_changed(polling=True)
            try:
                await bot.delete_webhook(drop_pending_updates=False)
                log.info("polling.started")
                await parts.new_poller().run(stop, lease)
                backoff.reset()
            except NetworkError as error:
                pause = backoff.next()
                log.warning("polling.start_failed", error=str(error), retry_in=pause)
            finally:
                await lease.release()
                observer.leadership_changed(polling=False)
            if not stop.is_set():
                log.warning("polling.stepped_down")
                await wait_for_any(stop, timeout=pause)

    async def _process(self, stop: asyncio.Event) -> None:
        """Apply inbox updates as they arrive (and on a timer, for other processes' updates).

        While the database cannot be reached the pause grows (updates stay pending meanwhile);
        an update stored by this process's poller ends the pause early.
        """
        engine, poll, wake = self._app.engine, self._app.settings.inbox_poll_seconds, self._app.wakeups.inbox
        backoff = Backoff(first=0.5, cap=5.0)
        while not stop.is_set():
            wake.clear()
            pause = poll
            try:
                await engine.process_pending(stop=stop)
                backoff.reset()
            except Exception as error:
                pause = max(poll, backoff.next())
                _log_task_failure("processing", error, pause)
            await wait_for_any(stop, wake, timeout=pause)
