"""The webhook endpoint over real HTTP: 200 only after the inbox commit, 4xx for every malformed request."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from durabot.bootstrap import build_engine
from durabot.config import Settings
from durabot.engine.events import Event, Received
from durabot.engine.runner import Engine
from durabot.testing import FakeUnitOfWork, FakeUnitOfWorkFactory, InMemoryInbox
from durabot.transport.webhook import SECRET_HEADER, WebhookServer
from tests.recorder import Recorder

SECRET = "s3cret-Token_1"
PATH = "/telegram/webhook"
BOT_ID = 1000001
HANG_GUARD = 30.0
USER = {"id": 77, "is_bot": False, "first_name": "Ana"}
GROUP = {"id": -100123, "type": "group", "title": "Workshop"}


def update(update_id: int, text: str = "/library", **fields: Any) -> dict[str, Any]:
    body = {"message_id": 1, "date": 1_700_000_000, "chat": GROUP, "from": USER, "text": text, **fields}
    return {"update_id": update_id, "message": {key: value for key, value in body.items() if value is not ...}}


async def start_server(engine: Engine) -> WebhookServer:
    webhook = WebhookServer(
        engine, f"https://bot.example{PATH}", SECRET, "127.0.0.1", 0,
        bot_id=BOT_ID, bot_username="DuraBot_bot", request_timeout=0.5,
    )
    await webhook.start()
    return webhook


@pytest.fixture
async def server(engine: Engine) -> AsyncIterator[WebhookServer]:
    webhook = await start_server(engine)
    yield webhook
    await webhook.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, server: WebhookServer, body: bytes, secret: str = SECRET) -> int:
    url = f"http://127.0.0.1:{server.port}{PATH}"
    headers = {SECRET_HEADER: secret, "Content-Type": "application/json"}
    async with http.post(url, data=body, headers=headers) as response:
        return response.status


async def raw_exchange(server: WebhookServer, request: bytes) -> bytes:
    """Send ``request`` as is over a fresh connection; everything the server answers before closing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), HANG_GUARD)
    finally:
        writer.close()


def stored(factory: FakeUnitOfWorkFactory) -> list[tuple[int, int, str | None, str | None]]:
    return [(r.bot_id, r.update_id, r.outcome, r.error) for r in factory.data.inbox.values()]


async def test_an_update_with_the_right_secret_is_stored_for_this_bot_applied_and_answered_200(
    http: aiohttp.ClientSession, server: WebhookServer, factory: FakeUnitOfWorkFactory
) -> None:
    assert await post(http, server, json.dumps(update(10)).encode()) == 200
    assert stored(factory) == [(BOT_ID, 10, "applied", None)]


@pytest.mark.parametrize("secret", ["wrong", "", SECRET + "x"])
async def test_a_wrong_secret_is_refused_with_403_and_nothing_is_stored(
    http: aiohttp.ClientSession, server: WebhookServer, factory: FakeUnitOfWorkFactory, secret: str
) -> None:
    assert await post(http, server, json.dumps(update(10)).encode(), secret=secret) == 403
    assert stored(factory) == []


@pytest.mark.parametrize("secret", ["sécret".encode(), b"\xff\xfe", "s3cret-Token_1é".encode()])
async def test_a_secret_header_that_is_not_ascii_is_refused_with_403(
    server: WebhookServer, factory: FakeUnitOfWorkFactory, secret: bytes
) -> None:
    body = json.dumps(update(10)).encode()
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n".encode() + SECRET_HEADER.encode() + b": " + secret + b"\r\n\r\n" + body
    )
    answer = await raw_exchange(server, request)
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:80]
    assert stored(factory) == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[" * 200_000 + b"]" * 200_000,
        b'{"update_id": 1, "x": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        b'{"update_id": 1, "message": NaN}',
        b'{"update_id": 1, "message": {"text": "\xff\xfe"}}',
        b'{"update_id": 1, "n": ' + b"9" * 5000 + b"}",
    ],
    ids=["malformed", "empty", "nested-200000", "nested-inside", "nan", "not-utf8", "5000-digits"],
)
async def test_a_body_that_is_not_json_gets_400_and_nothing_is_stored(
    http: aiohttp.ClientSession, server: WebhookServer, factory: FakeUnitOfWorkFactory, body: bytes
) -> None:
    assert await post(http, server, body) == 400
    assert stored(factory) == []


@pytest.mark.parametrize(
    "raw",
    [[], "update", 10, None, {"message": {}}, {"update_id": True}, {"update_id": "10"}, {"update_id": 2**63}, {"update_id": -1}],
)
async def test_a_body_without_a_usable_update_id_gets_400_and_nothing_is_stored(
    http: aiohttp.ClientSession, server: WebhookServer, factory: FakeUnitOfWorkFactory, raw: object
) -> None:
    assert await post(http, server, json.dumps(raw).encode()) == 400
    assert stored(factory) == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (update(11, chat=...), "message without chat"),
        (update(12, chat={"id": "abc"}), "malformed message.chat.id: not an integer"),
        (update(13, text="/library@OtherBot"), "command for another bot"),
        ({"update_id": 14, "edited_message": update(0)["message"]}, "not acted on: edited_message"),
    ],
)
async def test_a_malformed_or_foreign_update_is_stored_as_ignored_and_answered_200(
    http: aiohttp.ClientSession,
    server: WebhookServer,
    factory: FakeUnitOfWorkFactory,
    raw: dict[str, Any],
    reason: str,
) -> None:
    assert await post(http, server, json.dumps(raw).encode()) == 200
    assert stored(factory) == [(BOT_ID, raw["update_id"], "ignored", reason)]


async def test_a_command_for_this_bot_by_its_username_in_any_case_is_kept(
    http: aiohttp.ClientSession, server: WebhookServer, factory: FakeUnitOfWorkFactory
) -> None:
    assert await post(http, server, json.dumps(update(15, text="/library@durabot_BOT")).encode()) == 200
    assert stored(factory) == [(BOT_ID, 15, "applied", None)]


async def test_a_client_that_never_finishes_its_headers_is_disconnected(server: WebhookServer) -> None:
    answer = await raw_exchange(server, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Le".encode())
    assert answer == b"", "the server closed the connection without answering"


async def test_a_client_that_never_finishes_its_body_gets_408_and_nothing_is_stored(
    server: WebhookServer, factory: FakeUnitOfWorkFactory
) -> None:
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n{SECRET_HEADER}: {SECRET}\r\n\r\n"
        '{"update_id": 1'
    )
    answer = await raw_exchange(server, request.encode())
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert stored(factory) == []


class EventRefusingInbox(InMemoryInbox):
    """An inbox whose database refuses every event's values (as PostgreSQL refused NUL text), not ignored ones."""

    async def add(self, items: Sequence[Received], now: datetime, raw: Mapping[int, Any] | None = None) -> int:
        if any(isinstance(item, Event) for item in items):
            raise ValueError("invalid byte sequence")
        return await super().add(items, now, raw)

    async def record(self, item: Event, now: datetime, raw: Any, outcome: str, error: str | None = None) -> None:
        raise ValueError("invalid byte sequence")


class EventRefusingUnitOfWork(FakeUnitOfWork):
    def _rebind(self) -> None:
        super()._rebind()
        self.inbox = EventRefusingInbox(self._working)


class EventRefusingFactory(FakeUnitOfWorkFactory):
    def __call__(self) -> FakeUnitOfWork:
        return EventRefusingUnitOfWork(self)


async def test_an_update_the_database_refuses_is_kept_as_ignored_and_answered_200_not_retried_forever(
    http: aiohttp.ClientSession, settings: Settings
) -> None:
    factory = EventRefusingFactory()
    webhook = await start_server(build_engine(factory, settings))
    try:
        assert await post(http, webhook, json.dumps(update(16)).encode()) == 200
    finally:
        await webhook.stop()
    assert stored(factory) == [(BOT_ID, 16, "ignored", "refused by the database: ValueError")]
    [record] = factory.data.inbox.values()
    assert (record.chat_id, record.event) == (GROUP["id"], None)


async def test_each_committed_update_is_reported_to_the_observer_and_a_refused_request_is_not(
    http: aiohttp.ClientSession, engine: Engine, factory: FakeUnitOfWorkFactory
) -> None:
    recorder = Recorder()
    webhook = WebhookServer(
        engine, f"https://bot.example{PATH}", SECRET, "127.0.0.1", 0, recorder, bot_id=BOT_ID, bot_username="DuraBot_bot"
    )
    await webhook.start()
    try:
        assert await post(http, webhook, json.dumps(update(20)).encode()) == 200
        assert await post(http, webhook, json.dumps(update(20)).encode()) == 200, "a redelivery"
        assert await post(http, webhook, json.dumps(update(21)).encode(), secret="wrong") == 403
        assert await post(http, webhook, json.dumps(update(22, text="/library@OtherBot")).encode()) == 200
    finally:
        await webhook.stop()
    assert recorder.of("updates_stored") == [(1, 0), (0, 0), (1, 0)], "applied at once, a duplicate, one ignored"
