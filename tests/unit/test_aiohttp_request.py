"""python-telegram-bot on aiohttp: answers come back as they are, and timeouts and network failures as its own errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData

from durabot.transport.aiohttp_request import AiohttpRequest
from tests.conftest import free_port


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.Response:
        form = await request.post()
        return web.json_response({"ok": True, "result": {"got": dict(form)}})

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/answer", answer)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def request_() -> AsyncIterator[AiohttpRequest]:
    request = AiohttpRequest()
    await request.initialize()
    yield request
    await request.shutdown()


async def test_the_answer_comes_back_with_its_status_and_the_parameters_went_as_a_form(
    server: str, request_: AiohttpRequest
) -> None:
    status, body = await request_.do_request(f"{server}/answer", "POST", RequestData())
    assert status == 200 and b'"ok": true' in body


async def test_a_server_that_does_not_answer_in_time_is_timed_out(server: str, request_: AiohttpRequest) -> None:
    with pytest.raises(TimedOut):
        await request_.do_request(f"{server}/slow", "POST", read_timeout=0.2)


async def test_a_refused_connection_is_a_network_error(request_: AiohttpRequest) -> None:
    with pytest.raises(NetworkError) as raised:
        await request_.do_request(f"http://127.0.0.1:{free_port()}/x", "POST")
    assert not isinstance(raised.value, TimedOut)


async def test_an_uninitialised_request_says_so() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:9/x", "POST")
