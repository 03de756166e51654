"""The Bot API on the wire: body encodings, method names, and Telegram's error shapes, with raw HTTP."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from durabot.sandbox import Sandbox, SandboxClient
from durabot.sandbox.files import generate_png
from tests.sandbox.conftest import CHAT, TOKEN

KEYBOARD = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}


async def call(
    http: aiohttp.ClientSession, sandbox: Sandbox, method: str, token: str = TOKEN, **options: Any
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{sandbox.url}/bot{token}/{method}", **options) as response:
        return response.status, await response.json()


async def test_a_json_body(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    payload = {"chat_id": CHAT, "text": "hi", "reply_markup": KEYBOARD}
    status, body = await call(http, sandbox, "sendMessage", json=payload)
    assert status == 200 and body["ok"] is True
    assert body["result"]["text"] == "hi" and body["result"]["reply_markup"] == KEYBOARD


async def test_a_form_body_with_json_encoded_fields(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    form = {"chat_id": str(CHAT), "text": "hi", "reply_markup": json.dumps(KEYBOARD)}
    status, body = await call(http, sandbox, "sendMessage", data=form)
    assert status == 200
    assert body["result"]["chat"]["id"] == CHAT and body["result"]["reply_markup"] == KEYBOARD


async def test_a_multipart_body_with_a_file(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    form.add_field("caption", "plate")
    form.add_field("reply_markup", json.dumps(KEYBOARD))
    form.add_field("photo", generate_png(10, 20), filename="plate.png", content_type="image/png")
    status, body = await call(http, sandbox, "sendPhoto", data=form)
    assert status == 200, body
    assert body["result"]["photo"][0]["width"] == 10 and body["result"]["photo"][0]["height"] == 20
    assert body["result"]["caption"] == "plate" and body["result"]["reply_markup"] == KEYBOARD


async def test_a_file_attached_by_reference(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(CHAT))
    form.add_field("photo", "attach://picture")
    form.add_field("picture", generate_png(), filename="p.png", content_type="image/png")
    status, body = await call(http, sandbox, "sendPhoto", data=form)
    assert status == 200 and body["result"]["photo"][0]["width"] == 64


async def test_get_with_a_query_string_and_any_case(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    async with http.get(f"{sandbox.url}/bot{TOKEN}/SENDMESSAGE", params={"chat_id": CHAT, "text": "hi"}) as response:
        assert response.status == 200
        assert (await response.json())["result"]["text"] == "hi"
    async with http.get(f"{sandbox.url}/bot{TOKEN}/getme") as response:
        assert (await response.json())["result"]["id"] == 123456


async def test_error_shapes(http: aiohttp.ClientSession, sandbox: Sandbox, user: SandboxClient) -> None:
    assert await call(http, sandbox, "getMe", token="nonsense") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert await call(http, sandbox, "sendTelepathy") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    assert await call(http, sandbox, "sendMessage", json={"chat_id": CHAT, "text": ""}) == (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"},
    )
    await user.fail("sendMessage", 429, retry_after=7)
    status, body = await call(http, sandbox, "sendMessage", json={"chat_id": CHAT, "text": "hi"})
    assert status == 429 and body["error_code"] == 429 and body["parameters"] == {"retry_after": 7}
    await user.fail("sendMessage", 500)
    assert await call(http, sandbox, "sendMessage", json={"chat_id": CHAT, "text": "hi"}) == (
        500,
        {"ok": False, "error_code": 500, "description": "Internal Server Error"},
    )


async def test_bad_bodies_are_bad_requests(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    headers = {"Content-Type": "application/json"}
    status, body = await call(http, sandbox, "sendMessage", data="{not json", headers=headers)
    assert status == 400 and body["ok"] is False
    status, body = await call(http, sandbox, "sendMessage", data={"chat_id": "x", "text": "hi"})
    assert (status, body["description"]) == (400, "Bad Request: chat not found")
    status, body = await call(http, sandbox, "sendMessage", data={"text": "hi"})
    assert (status, body["description"]) == (400, "Bad Request: chat_id is empty")
    status, body = await call(http, sandbox, "sendMessage", data={"chat_id": CHAT, "text": "hi", "reply_markup": "{"})
    assert status == 400


async def test_every_call_is_logged(http: aiohttp.ClientSession, sandbox: Sandbox, user: SandboxClient) -> None:
    await call(http, sandbox, "sendMessage", json={"chat_id": CHAT, "text": "hi"})
    await call(http, sandbox, "getMe")
    [logged] = await user.calls("sendmessage")
    assert logged["method"] == "sendMessage" and logged["status"] == 200
    assert logged["params"] == {"chat_id": CHAT, "text": "hi"}
    assert [c["method"] for c in await user.calls()] == ["sendMessage", "getMe"]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "telepathy", "chat_id": CHAT},
        {"type": "message", "chat_id": "x", "text": "hi"},
        {"type": "message", "chat_id": CHAT},
    ],
)
async def test_the_test_api_refuses_impossible_updates(
    http: aiohttp.ClientSession, sandbox: Sandbox, body: dict[str, Any]
) -> None:
    async with http.post(f"{sandbox.url}/sandbox/api/{TOKEN}/updates", json=body) as response:
        assert response.status == 400
        assert (await response.json())["ok"] is False


async def test_a_button_press_needs_a_bot_message(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    body = {"type": "callback", "chat_id": CHAT, "user_id": CHAT, "message_id": 5, "data": "x"}
    async with http.post(f"{sandbox.url}/sandbox/api/{TOKEN}/updates", json=body) as response:
        assert response.status == 400
        assert "no bot message 5" in (await response.json())["description"]
