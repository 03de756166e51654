"""What the browser tests share: Debian's Chromium driven by playwright, and the real ``durabot run`` process."""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.e2e.conftest import Process, base_env

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


def start_durabot(database: Path, sandbox_port: int, **env: str) -> tuple[Process, str]:
    """``durabot run`` with no token: it starts the sandbox itself; the process and the chat page's address."""
    settings = base_env(DATABASE_URL=f"sqlite:///{database}", SANDBOX_PORT=str(sandbox_port), **env)
    process = Process([sys.executable, "-m", "durabot", "run"], settings)
    try:
        line = process.wait_for("Chat with the bot at")
        process.wait_for("polling.started")
    except BaseException:
        process.stop()
        raise
    return process, line.split("Chat with the bot at", 1)[1].strip()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()
