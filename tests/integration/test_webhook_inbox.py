"""The webhook on real databases: a poison update is stored as ignored and never holds back the next one.

It answers 5xx only when the database is down.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from durabot.bootstrap import build_registry
from durabot.engine.runner import Engine
from durabot.storage.database import Database
from durabot.storage.tables import TelegramUpdateRow
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from durabot.transport.webhook import SECRET_HEADER, WebhookServer
from tests.conftest import free_port
from tests.integration.conftest import Harness

SECRET = "inbox-secret"
BOT_ID = 5151
USER = {"id": 61, "is_bot": False, "first_name": "Ana"}


def text_update(update_id: int, chat: Any = None, text: Any = "/library", **fields: Any) -> dict[str, Any]:
    body = {"message_id": 1, "date": 1_700_000_000, "chat": chat or {"id": 61, "type": "private"}, "from": USER,
            "text": text, **fields}
    return {"update_id": update_id, "message": {key: value for key, value in body.items() if value is not ...}}


async def start_webhook(engine: Engine) -> WebhookServer:
    server = WebhookServer(
        engine, "https://bot.example/hook", SECRET, "127.0.0.1", 0, bot_id=BOT_ID, bot_username="InboxBot"
    )
    await server.start()
    return server


@pytest.fixture
async def webhook(harness: Harness) -> AsyncIterator[WebhookServer]:
    server = await start_webhook(harness.engine)
    yield server
    await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, server: WebhookServer, raw: object) -> int:
    url = f"http://127.0.0.1:{server.port}{server.path}"
    async with http.post(url, data=json.dumps(raw).encode(), headers={SECRET_HEADER: SECRET}) as response:
        return response.status


async def inbox(harness: Harness) -> list[tuple[Any, ...]]:
    query = select(
        TelegramUpdateRow.bot_id, TelegramUpdateRow.update_id, TelegramUpdateRow.chat_id,
        TelegramUpdateRow.outcome, TelegramUpdateRow.error,
    ).order_by(TelegramUpdateRow.id)
    async with harness.database.engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(query)).all()]


@pytest.mark.parametrize(
    ("poison", "reason"),
    [
        (text_update(1, chat={"id": "abc", "type": "private"}), "malformed message.chat.id: not an integer"),
        (text_update(1, chat={"id": True, "type": "private"}), "malformed message.chat.id: not an integer"),
        (text_update(1, chat=...), "message without chat"),
        (text_update(1, **{"from": ...}), "message without from"),
        ({"update_id": 1, "callback_query": {"id": "q", "chat_instance": "c", "data": "lib:2",
                                             "message": {"message_id": 1, "date": 0, "chat": {"id": 61}}}},
         "callback_query without from"),
        (text_update(1, chat={"id": 2**63, "type": "private"}), "malformed message.chat.id: out of range"),
        (text_update(1, text="/library@SomeOtherBot"), "command for another bot"),
    ],
)
async def test_a_poison_update_is_stored_as_ignored_and_the_next_one_is_applied(
    harness: Harness, webhook: WebhookServer, http: aiohttp.ClientSession, poison: dict[str, Any], reason: str
) -> None:
    assert await post(http, webhook, poison) == 200
    assert await post(http, webhook, text_update(2)) == 200
    await harness.engine.process_pending()
    rows = await inbox(harness)
    assert [(bot_id, update_id, outcome, error) for bot_id, update_id, _, outcome, error in rows] == [
        (BOT_ID, 1, "ignored", reason),
        (BOT_ID, 2, "applied", None),
    ]


@pytest.mark.parametrize("update_id", [True, 2**63, 2**64, -1, "7"])
async def test_an_update_id_no_column_can_hold_is_refused_with_400_and_nothing_is_stored(
    harness: Harness, webhook: WebhookServer, http: aiohttp.ClientSession, update_id: Any
) -> None:
    raw = text_update(0)
    raw["update_id"] = update_id
    assert await post(http, webhook, raw) == 400
    assert await inbox(harness) == []


@pytest.mark.parametrize("text", ["a\u0000b", "lone \ud800 high", "lone \udfff low", "\u0000" * 4096])
async def test_text_postgresql_cannot_store_is_stored_replaced_and_applied(
    harness: Harness, webhook: WebhookServer, http: aiohttp.ClientSession, text: str
) -> None:
    assert await post(http, webhook, text_update(3, text=text, caption=text)) == 200
    await harness.engine.process_pending()
    assert [row[3] for row in await inbox(harness)] == ["applied"]


async def test_the_webhook_answers_503_only_while_the_database_is_down(http: aiohttp.ClientSession) -> None:
    database = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/test")  # nothing listens there
    engine = Engine(SqlAlchemyUnitOfWorkFactory(database), build_registry())
    server = await start_webhook(engine)
    try:
        assert await post(http, server, text_update(4)) == 503
        assert await post(http, server, {"update_id": True}) == 400, "a bad request is still a bad request"
    finally:
        await server.stop()
        await database.dispose()
