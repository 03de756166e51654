"""Sandbox fixtures: a started sandbox, a python-telegram-bot client on it, and a test API client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from telegram import Bot

from durabot.sandbox import Sandbox, SandboxClient
from durabot.transport.telegram import make_bot

TOKEN = "123456:sandbox-test-token"
CHAT = 1001


@pytest.fixture(autouse=True)
def timedelta_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opt in to python-telegram-bot's timedelta durations (``RetryAfter.retry_after``) without warnings."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as running:
        yield running


def bot_on(sandbox: Sandbox, token: str = TOKEN) -> Bot:
    """A real python-telegram-bot client pointed at the sandbox, built as the service builds its own (on aiohttp)."""
    return make_bot(token, sandbox.url)


@pytest.fixture
async def bot(sandbox: Sandbox) -> AsyncIterator[Bot]:
    async with bot_on(sandbox) as client:
        yield client


@pytest.fixture
async def user(sandbox: Sandbox) -> AsyncIterator[SandboxClient]:
    """The Telegram user's side: the sandbox's test API for :data:`TOKEN`."""
    async with SandboxClient(sandbox.url, TOKEN) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
