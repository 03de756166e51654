"""Webhook delivery: pushed in order with the secret header, retried until the endpoint answers 2xx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest, Conflict

from durabot.sandbox import SandboxClient
from tests.sandbox.conftest import CHAT

SECRET = "s3cret_token-1"


@dataclass
class Endpoint:
    """A bot's webhook endpoint that records each delivery and answers with the next planned status."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, Any], str | None, float]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        self.received.append((await request.json(), secret, time.monotonic()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    @property
    def update_ids(self) -> list[int]:
        return [update["update_id"] for update, _, _ in self.received]


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    recorder = Endpoint()
    app = web.Application()
    app.router.add_post("/hook", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield recorder
    await runner.cleanup()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_updates_are_pushed_in_order_with_the_secret(bot: Bot, user: SandboxClient, endpoint: Endpoint) -> None:
    assert await bot.set_webhook(endpoint.url, secret_token=SECRET)
    ids = [(await user.send_text(CHAT, text))["update_id"] for text in ("one", "two", "three")]

    async def all_delivered() -> bool:
        return len(endpoint.received) == 3 and not await user.pending_updates()

    await eventually(all_delivered)
    assert endpoint.update_ids == ids
    assert [update["message"]["text"] for update, _, _ in endpoint.received] == ["one", "two", "three"]
    assert {secret for _, secret, _ in endpoint.received} == {SECRET}
    info = await bot.get_webhook_info()
    assert info.url == endpoint.url and info.pending_update_count == 0 and info.last_error_date is None


async def test_no_secret_means_no_header(bot: Bot, user: SandboxClient, endpoint: Endpoint) -> None:
    await bot.set_webhook(endpoint.url)
    await user.send_text(CHAT, "hello")

    async def delivered() -> bool:
        return bool(endpoint.received)

    await eventually(delivered)
    assert endpoint.received[0][1] is None


async def test_a_failed_delivery_is_retried_and_recorded(bot: Bot, user: SandboxClient, endpoint: Endpoint) -> None:
    endpoint.statuses = [500]
    await bot.set_webhook(endpoint.url, secret_token=SECRET)
    first = (await user.send_text(CHAT, "first"))["update_id"]
    second = (await user.send_text(CHAT, "second"))["update_id"]

    async def delivered_once() -> bool:
        return len(endpoint.received) >= 1

    await eventually(delivered_once)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 2

    async def all_delivered() -> bool:
        return endpoint.update_ids == [first, first, second]

    await eventually(all_delivered)
    assert endpoint.received[1][2] - endpoint.received[0][2] >= 0.4  # backed off before retrying
    info = await bot.get_webhook_info()
    assert info.last_error_message is not None and "500" in info.last_error_message
    assert info.last_error_date is not None

    async def nothing_pending() -> bool:
        return not await user.pending_updates()

    await eventually(nothing_pending)


async def test_an_unreachable_endpoint_keeps_updates_pending(bot: Bot, user: SandboxClient) -> None:
    await bot.set_webhook("http://127.0.0.1:9/unreachable")
    await user.send_text(CHAT, "anyone?")

    async def error_recorded() -> bool:
        return (await bot.get_webhook_info()).last_error_message is not None

    await eventually(error_recorded)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    assert info.last_error_message == "Connection refused"


async def test_get_updates_conflicts_while_a_webhook_is_set(bot: Bot, user: SandboxClient) -> None:
    await bot.set_webhook("http://127.0.0.1:9/unreachable")
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    assert await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""
    update_id = (await user.send_text(CHAT, "polled"))["update_id"]
    assert [u.update_id for u in await bot.get_updates()] == [update_id]


async def test_drop_pending_updates_forgets_the_queue(bot: Bot, user: SandboxClient) -> None:
    await user.send_text(CHAT, "stale")
    await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == ()


async def test_a_malformed_secret_is_refused(bot: Bot, endpoint: Endpoint) -> None:
    with pytest.raises(BadRequest, match="Secret token contains unallowed characters"):
        await bot.set_webhook(endpoint.url, secret_token="not allowed!")
