"""The sandbox's web chat page in a real headless Chromium, against the real ``durabot run`` process."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.e2e.conftest import Process, base_env, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chat_page_url(tmp_path: Path) -> Iterator[str]:
    """``durabot run`` with no token: it starts the sandbox itself and prints the chat page's address."""
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'browser.sqlite3'}", SANDBOX_PORT=str(free_port()))
    process = Process([sys.executable, "-m", "durabot", "run"], env)
    try:
        line = process.wait_for("Chat with the bot at")
        process.wait_for("polling.started")
        yield line.split("Chat with the bot at", 1)[1].strip()
    finally:
        process.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


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
