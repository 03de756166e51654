"""The long-running service: take updates in, apply them, send replies, expire conversations; stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from telegram import Bot
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential
from telegram.error import NetworkError

from durabot.bootstrap import App
from durabot.storage.leader import LeaderLease
from durabot.storage.migrate import upgrade
from durabot.storage.outbox_queue import SqlAlchemyOutboxQueue
from durabot.transport.polling import ALLOWED_UPDATES, Poller
from durabot.transport.relay import OutboxRelay
from durabot.transport.telegram import bot_commands, make_bot
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
        except Exception:
            log.exception("service.task_failed", task=name)
        await wait_for_any(stop, timeout=seconds)


class Service:
    """Everything ``durabot run`` does, with an explicit start and a graceful stop."""

    def __init__(self, app: App, announce: Callable[[str], None] = print) -> None:
        self._app = app
        self._announce = announce
        self.inbox_wake = asyncio.Event()
        self.outbox_wake = asyncio.Event()
        self.webhook: WebhookServer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then stop taking updates, finish the step in hand and flush replies."""
        app, settings = self._app, self._app.settings
        await upgrade(app.database)
        async with contextlib.AsyncExitStack() as stack:
            bot = await self._connect_bot(stack, stop)
            if bot is None:
                return
            app.engine.on_applied = lambda applied: self.outbox_wake.set() if applied.outgoing else None
            relay = OutboxRelay(SqlAlchemyOutboxQueue(app.database), bot)
            relay_stop, intake_stop = asyncio.Event(), asyncio.Event()
            relay_task = asyncio.create_task(relay.run(relay_stop, self.outbox_wake))
            processing = asyncio.create_task(self._process(stop))
            cleanup = asyncio.create_task(_every(settings.cleanup_interval_seconds, app.engine.cleanup, "cleanup", stop))
            intake = asyncio.create_task(self._intake(bot, intake_stop))
            log.info("service.started", database=app.database.dialect, mode="webhook" if settings.webhook_url else "polling")
            await stop.wait()

            log.info("service.stopping")
            intake_stop.set()
            intake.cancel()
            await asyncio.gather(intake, return_exceptions=True)
            if self.webhook is not None:
                await self.webhook.stop()
            await asyncio.gather(processing, cleanup, return_exceptions=True)
            relay_stop.set()
            await asyncio.gather(relay_task, return_exceptions=True)
            await relay.flush(FLUSH_SECONDS)
        log.info("service.stopped")

    async def _connect_bot(self, stack: contextlib.AsyncExitStack, stop: asyncio.Event) -> Bot | None:
        settings = self._app.settings
        token, base_url = settings.telegram_bot_token, settings.telegram_api_base_url
        if settings.uses_sandbox:
            from durabot.sandbox import Sandbox

            sandbox = await stack.enter_async_context(Sandbox(settings.sandbox_host, settings.sandbox_port))
            token, base_url = SANDBOX_TOKEN, sandbox.url
            self._announce(f"No TELEGRAM_BOT_TOKEN: running against the local sandbox. Chat with the bot at {sandbox.chat_page_url}")
        assert token is not None
        bot = make_bot(token, base_url)
        retrying = AsyncRetrying(retry=retry_if_exception_type(NetworkError), wait=wait_random_exponential(1, 30))
        async for attempt in retrying:
            with attempt:
                if stop.is_set():
                    return None
                await bot.initialize()
        stack.push_async_callback(bot.shutdown)
        try:
            await bot.set_my_commands(bot_commands(self._app.engine_registry))
        except Exception as error:
            log.warning("service.set_commands_failed", error=str(error))
        log.info("service.bot_ready", username=bot.username, api=base_url)
        return bot

    async def _intake(self, bot: Bot, stop: asyncio.Event) -> None:
        """Take updates in: the webhook server, or a poller once this process holds the polling lease."""
        settings, engine = self._app.settings, self._app.engine
        if settings.webhook_url:
            assert settings.webhook_secret is not None
            self.webhook = WebhookServer(
                engine, settings.webhook_url, settings.webhook_secret,
                settings.webhook_listen_host, settings.webhook_listen_port, self.inbox_wake.set,
            )
            await self.webhook.start()
            await bot.set_webhook(settings.webhook_url, secret_token=settings.webhook_secret, allowed_updates=ALLOWED_UPDATES)
            await stop.wait()
            return
        lease = LeaderLease(self._app.database)
        if not await lease.acquire(stop):
            return
        try:
            await bot.delete_webhook(drop_pending_updates=False)
            log.info("polling.started")
            await Poller(bot, engine, self.inbox_wake.set).run(stop)
        finally:
            await lease.release()

    async def _process(self, stop: asyncio.Event) -> None:
        """Apply inbox updates as they arrive (and on a timer, for other processes' updates)."""
        engine, poll = self._app.engine, self._app.settings.inbox_poll_seconds
        while not stop.is_set():
            self.inbox_wake.clear()
            try:
                await engine.process_pending(stop=stop)
            except Exception:
                log.exception("service.processing_failed")
            await wait_for_any(stop, self.inbox_wake, timeout=poll)
