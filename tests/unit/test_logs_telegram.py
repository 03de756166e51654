"""python-telegram-bot and httpx logging at DEBUG, against the sandbox: the bot token and the webhook secret never reach the logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import structlog

from durabot.config import Settings
from durabot.errors import ConfigurationError
from durabot.redaction import REDACTED
from durabot.sandbox import Sandbox, SandboxClient
from durabot.transport.connect import initialise_bot
from durabot.transport.telegram import make_bot
from tests.logcapture import CapturedLogs, captured_logs

__all__ = ["captured_logs"]

TOKEN = "555000111:AAFakeTokenForTheSandbox_0123456789xyz"
SECRET = "wh-Secret_for_tests_7"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox("127.0.0.1", 0) as running:
        yield running


def verbose_libraries() -> None:
    """What an operator gets by turning these loggers up by hand: every request, with its URL and parameters."""
    for name in ("telegram", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)


async def test_bot_api_requests_logged_at_debug_show_neither_token_nor_webhook_secret(
    sandbox: Sandbox, captured_logs: CapturedLogs
) -> None:
    settings = Settings(_env_file=None, telegram_bot_token=TOKEN, webhook_url="https://bot.example.org/hook", webhook_secret=SECRET)
    captured_logs.configure("DEBUG", "json", settings.secret_values())
    verbose_libraries()
    bot = make_bot(TOKEN, sandbox.url)
    assert await initialise_bot(bot, sandbox.url, asyncio.Event())
    try:
        await bot.set_webhook("https://bot.example.org/hook", secret_token=SECRET)
        await bot.delete_webhook()
    finally:
        await bot.shutdown()
    written = captured_logs.text
    assert "setWebhook" in written and "secret_token" in written, "python-telegram-bot logged the call"
    assert TOKEN not in written and TOKEN.split(":")[1] not in written
    assert SECRET not in written
    assert f"bot555000111:{REDACTED}" in written


async def test_a_rejected_token_is_one_clear_error_that_names_only_the_bot_id(
    sandbox: Sandbox, captured_logs: CapturedLogs
) -> None:
    captured_logs.configure("DEBUG", "json", [TOKEN])
    verbose_libraries()
    async with SandboxClient(sandbox.url, TOKEN) as user:
        await user.fail("getMe", 401, count=5)
    bot = make_bot(TOKEN, sandbox.url)
    with pytest.raises(ConfigurationError) as refused:
        await initialise_bot(bot, sandbox.url, asyncio.Event())
    assert str(refused.value) == (
        f"the Bot API at {sandbox.url} rejected TELEGRAM_BOT_TOKEN (bot 555000111): check the token @BotFather gave you"
    )
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    structlog.get_logger("durabot.test").error("startup.failed", error=str(refused.value))
    assert TOKEN.split(":")[1] not in captured_logs.text


async def test_an_unreachable_bot_api_is_retried_with_a_warning_each_time_until_stopped(
    captured_logs: CapturedLogs,
) -> None:
    captured_logs.configure("INFO", "json")
    stop = asyncio.Event()
    bot = make_bot(TOKEN, "http://127.0.0.1:9")  # the discard port: nothing listens there

    async def stop_after_two_warnings() -> None:
        while len(captured_logs.events("service.bot_api_unreachable")) < 2:
            await asyncio.sleep(0.05)
        stop.set()

    watcher = asyncio.create_task(stop_after_two_warnings())
    assert await asyncio.wait_for(initialise_bot(bot, "http://127.0.0.1:9", stop), 120) is False
    await watcher
    first, second = captured_logs.events("service.bot_api_unreachable")[:2]
    assert (first["level"], first["attempt"], second["attempt"]) == ("warning", 1, 2)
    assert first["api"] == "http://127.0.0.1:9" and first["error"].startswith("NetworkError")
    assert TOKEN.split(":")[1] not in captured_logs.text
