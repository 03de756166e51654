"""The chat page and the command that serves the sandbox on its own."""

from __future__ import annotations

import asyncio
import re
import sys

import aiohttp
from telegram import Bot

from durabot.sandbox import Sandbox
from tests.sandbox.conftest import TOKEN


async def test_the_chat_page_and_its_assets_are_served(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    assert sandbox.chat_page_url == f"{sandbox.url}/"
    async with http.get(sandbox.chat_page_url) as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
    for element_id in ("message-input", "send-button", "photo-button", "chat-id-input", "bot-select"):
        assert f'id="{element_id}"' in page
    for asset in ("/static/chat.css", "/static/chat.js"):
        assert asset in page
        async with http.get(f"{sandbox.url}{asset}") as response:
            assert response.status == 200
            assert len(await response.read()) > 500
    async with http.get(f"{sandbox.url}/static/chat.js") as response:
        script = await response.text()
    for class_name in ("inline-button", '"bot" : "user"', "message-input", "send-button"):
        assert class_name in script


async def test_bots_are_listed_once_seen(http: aiohttp.ClientSession, sandbox: Sandbox, bot: Bot) -> None:
    async with http.get(f"{sandbox.url}/sandbox/api/bots") as response:
        assert await response.json() == {"bots": [{"token": TOKEN, "id": 123456}]}


async def test_the_module_runs_a_sandbox_and_prints_its_url(http: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "durabot.sandbox", "--host", "127.0.0.1", "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        match = re.fullmatch(r"sandbox: chat page at (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, line
        async with http.get(match.group(1)) as response:
            assert response.status == 200
        async with http.get(f"{match.group(1)}bot{TOKEN}/getMe") as response:
            assert (await response.json())["result"]["username"] == "durabot_sandbox_bot"
    finally:
        if process.returncode is None:
            process.terminate()
    assert await asyncio.wait_for(process.wait(), 10) == 0
