"""The sandbox's web chat page in a real headless Chromium, against the real ``durabot run`` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import start_durabot
from tests.conftest import free_port


@pytest.fixture
def chat_page_url(tmp_path: Path) -> Iterator[str]:
    process, url = start_durabot(tmp_path / "browser.sqlite3", free_port())
    try:
        yield url
    finally:
        process.stop()


async def send(page: Page, text: str) -> None:
    await page.fill("#message-input", text)
    await page.click("#send-button")


async def test_chat_page_runs_a_conversation_with_buttons(
    browser: Browser, chat_page_url: str, tmp_path: Path
) -> None:
    page = await browser.new_page()
    await page.goto(chat_page_url)
    await send(page, "/addmachine")
    bot_messages = page.locator(".message.bot")
    await expect(bot_messages.last).to_contain_text("Step 1 of 6 · Nickname", timeout=30_000)
    await expect(page.locator(".message.user").last).to_contain_text("/addmachine")

    await send(page, "Press 1")
    await expect(bot_messages.last).to_contain_text("Step 2 of 6 · Manufacturer", timeout=30_000)
    await page.locator(".inline-button", has_text="Skip").last.click()
    await expect(bot_messages.last).to_contain_text("Step 3 of 6 · Model number", timeout=30_000)
    await page.screenshot(path=str(tmp_path / "chat-page.png"), full_page=True)


async def test_the_conversation_so_far_stays_on_the_page_when_the_bot_restarts(
    browser: Browser, tmp_path: Path
) -> None:
    database, port = tmp_path / "restart.sqlite3", free_port()
    process, url = start_durabot(database, port)
    try:
        page = await browser.new_page()
        await page.goto(url)
        await send(page, "/addmachine")
        await expect(page.locator(".message.bot").last).to_contain_text("Step 1 of 6 · Nickname", timeout=30_000)
    finally:
        process.stop()

    process, _ = start_durabot(database, port)  # a new sandbox: no chats, update ids from a new base
    try:
        earlier = page.locator(".message.earlier")
        await expect(earlier.first).to_contain_text("/addmachine", timeout=30_000)
        await expect(earlier.last).to_contain_text("Step 1 of 6 · Nickname")
        await expect(page.locator(".earlier-divider")).to_be_visible()

        await send(page, "Press 1")
        live_bot = page.locator(".message.bot:not(.earlier)")
        await expect(live_bot.last).to_contain_text("Step 2 of 6 · Manufacturer", timeout=30_000)

        await page.reload()
        await expect(page.locator(".message.earlier").first).to_contain_text("/addmachine", timeout=30_000)
        await expect(page.locator(".message.user:not(.earlier)").last).to_contain_text("Press 1")
        await page.screenshot(path=str(tmp_path / "chat-page-after-restart.png"), full_page=True)
    finally:
        process.stop()
