"""Reaching the Bot API at start-up: wait, with a WARNING per try, while it cannot be reached; stop at once when it rejects the token."""

from __future__ import annotations

import asyncio

import structlog
from telegram import Bot
from telegram.error import InvalidToken, NetworkError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from durabot.errors import ConfigurationError
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.service")

MAX_PAUSE_SECONDS = 30.0


async def initialise_bot(bot: Bot, api_url: str, stop: asyncio.Event) -> bool:
    """Initialise ``bot`` (its ``getMe``), retrying for as long as the server cannot be reached.

    Args:
        bot: The client to initialise.
        api_url: The Bot API server's address, for the log lines and the error.
        stop: Set to give up; the pause between tries ends as soon as it is set.

    Returns:
        Whether the bot is ready (``False``: ``stop`` was set first).

    Raises:
        ConfigurationError: the server rejected the token (the message names the bot id only).
    """

    def warn(attempt: RetryCallState) -> None:
        error = attempt.outcome.exception() if attempt.outcome else None
        pause = attempt.next_action.sleep if attempt.next_action else 0.0
        log.warning(
            "service.bot_api_unreachable",
            api=api_url,
            attempt=attempt.attempt_number,
            retry_in=round(pause, 1),
            error=f"{type(error).__name__}: {error}",
        )

    async def pause(seconds: float) -> None:
        await wait_for_any(stop, timeout=seconds)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(NetworkError),
        wait=wait_random_exponential(multiplier=1, max=MAX_PAUSE_SECONDS),
        sleep=pause,
        before_sleep=warn,
    )
    try:
        async for attempt in retrying:
            with attempt:
                if stop.is_set():
                    return False
                await bot.initialize()
    except InvalidToken:
        bot_id = bot.token.partition(":")[0]
        raise ConfigurationError(
            f"the Bot API at {api_url} rejected TELEGRAM_BOT_TOKEN (bot {bot_id}): check the token @BotFather gave you"
        ) from None
    return True
