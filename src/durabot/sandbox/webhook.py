"""Pushes a bot's pending updates to its webhook, one at a time and in order, retrying until it answers 2xx."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from durabot.sandbox.state import BotState, Webhook, now

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
FIRST_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 5.0
DELIVERY_TIMEOUT = aiohttp.ClientTimeout(total=10)


class WebhookDelivery:
    """Delivers one bot's updates while a webhook is set; an update is confirmed only by a 2xx answer."""

    def __init__(self, bot: BotState, session: aiohttp.ClientSession) -> None:
        self._bot = bot
        self._session = session

    async def run(self) -> None:
        """Deliver until the bot's queue is closed, backing off 0.5 s, 1 s, 2 s … up to 5 s after failures."""
        retry_delay = FIRST_RETRY_DELAY
        while True:
            target = await self._next()
            if target is None:
                return
            webhook, update = target
            problem = await self._post(webhook, update)
            if problem is None:
                self._bot.queue.confirm(int(update["update_id"]))
                retry_delay = FIRST_RETRY_DELAY
                continue
            webhook.last_error_date = now()
            webhook.last_error_message = problem
            await asyncio.sleep(retry_delay)
            retry_delay = min(retry_delay * 2, MAX_RETRY_DELAY)

    async def _next(self) -> tuple[Webhook, dict[str, Any]] | None:
        """Wait until a webhook is set and an update is pending; ``None`` once the queue is closed."""
        queue = self._bot.queue
        while not queue.closed:
            changed = queue.changed
            webhook = self._bot.webhook
            if webhook is not None:
                pending = queue.take(None, 1, self._bot.allowed_updates)
                if pending:
                    return webhook, pending[0]
            await changed.wait()
        return None

    async def _post(self, webhook: Webhook, update: dict[str, Any]) -> str | None:
        """POST one update; ``None`` on a 2xx answer, else what went wrong, in Telegram's words."""
        headers = {SECRET_HEADER: webhook.secret_token} if webhook.secret_token else {}
        try:
            async with self._session.post(
                webhook.url, json=update, headers=headers, timeout=DELIVERY_TIMEOUT
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason or ''}".rstrip()
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientError as error:
            return f"Connection error: {error}"
