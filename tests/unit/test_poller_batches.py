"""The poller's ``getUpdates`` round with bad batches: what can be stored is, the batch is confirmed, no content logged."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from durabot.engine.events import Event
from durabot.engine.runner import Engine
from durabot.testing import FakeUnitOfWorkFactory
from durabot.transport.polling import UNUSABLE_BATCH_PAUSE_SECONDS, Poller
from durabot.transport.telegram import make_bot
from tests.fake_bot_api import FakeBotApi
from tests.recorder import Recorder

BOT_ID = 777001
USERNAME = "PollBot"
PRIVATE = "jane@example.com"


def text_update(update_id: Any, text: str = "/library", chat_id: Any = 5) -> dict[str, Any]:
    message = {"message_id": 1, "date": 1_700_000_000, "chat": {"id": chat_id, "type": "private"},
               "from": {"id": 5, "is_bot": False, "first_name": "Jane"}, "text": text}
    return {"update_id": update_id, "message": message}


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(BOT_ID, USERNAME) as served:
        yield served


@pytest.fixture
async def poller(api: FakeBotApi, engine: Engine) -> AsyncIterator[Poller]:
    async with make_bot(f"{BOT_ID}:poll-token", api.url) as bot:
        yield Poller(bot, engine, long_poll_seconds=0)


def stored(factory: FakeUnitOfWorkFactory) -> list[tuple[int, int, str | None, str | None]]:
    return [(r.bot_id, r.update_id, r.outcome, r.error) for r in factory.data.inbox.values()]


async def test_unusable_updates_are_skipped_and_the_offset_still_moves_past_the_batch(
    api: FakeBotApi, poller: Poller, factory: FakeUnitOfWorkFactory
) -> None:
    api.results.append([
        text_update(10),
        text_update(True, PRIVATE),
        text_update(12, chat_id="abc"),
        PRIVATE,
        text_update(11, "/library@OtherBot"),
        text_update(2**64, PRIVATE),
    ])
    with capture_logs() as logs:
        assert await poller.poll_once() == 3
    assert poller.offset == 13
    assert sorted(stored(factory), key=lambda row: row[1]) == [
        (BOT_ID, 10, "applied", None),  # applied on arrival: its chat had nothing waiting
        (BOT_ID, 11, "ignored", "command for another bot"),
        (BOT_ID, 12, "ignored", "malformed message.chat.id: not an integer"),
    ]
    skipped = [entry for entry in logs if entry["event"] == "transport.unusable_update"]
    assert [(entry["log_level"], entry["position"], entry["shape"]) for entry in skipped] == [
        ("warning", 1, "dict"),
        ("warning", 3, "str"),
        ("warning", 5, "dict"),
    ]
    assert PRIVATE not in repr(logs)


@pytest.mark.parametrize("result", [{"update_id": 1}, "updates", 7, None])
async def test_a_batch_that_is_not_a_list_is_a_warning_and_changes_nothing(
    api: FakeBotApi, poller: Poller, factory: FakeUnitOfWorkFactory, result: object
) -> None:
    api.results.append(result)
    with capture_logs() as logs:
        assert await poller.poll_once() == 0
    assert poller.offset is None and stored(factory) == []
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [("polling.batch_not_a_list", "warning")]


async def test_a_batch_with_no_usable_update_leaves_the_offset_where_it_was(
    api: FakeBotApi, poller: Poller, factory: FakeUnitOfWorkFactory
) -> None:
    api.results += [[text_update(20)], [text_update("21"), None]]
    await poller.poll_once()
    started = asyncio.get_running_loop().time()
    await poller.poll_once()
    assert asyncio.get_running_loop().time() - started >= UNUSABLE_BATCH_PAUSE_SECONDS, "a pause, not a busy loop"
    assert poller.offset == 21
    assert api.offsets == [None, 21]
    assert [row[1] for row in stored(factory)] == [20]


async def test_each_stored_batch_is_reported_with_how_many_updates_were_new_and_how_many_still_wait(
    api: FakeBotApi, engine: Engine
) -> None:
    await engine.receive([dataclasses.replace(Event.message(1, 6, 6, "/library"), bot_id=BOT_ID)])  # chat 6 has a backlog
    recorder = Recorder()
    api.results += [[text_update(40), text_update(41, chat_id=6)], [text_update(40)]]
    async with make_bot(f"{BOT_ID}:poll-token", api.url) as bot:
        poller = Poller(bot, engine, recorder, long_poll_seconds=0)
        assert await poller.poll_once() == 2
        assert await poller.poll_once() == 0
    assert recorder.of("updates_stored") == [(2, 1), (0, 0)], "chat 5's update was applied at once, chat 6's waits"
