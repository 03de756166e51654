"""Poison updates, fuzzed: mutated updates through the webhook and the poller never stall a chat, on both databases.

Each example sends a mix of well-formed updates and mutated ones (any JSON value in any field, fields
deleted, NUL and lone surrogates, huge ints, bools, nested objects) for a few chats, half of them to
the webhook and half in one ``getUpdates`` batch to the poller, then applies everything pending and
checks: no 5xx, every update with a usable id stored and dealt with, none left pending, every
well-formed update applied, and the poller's offset past the batch.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from durabot.storage.tables import TelegramUpdateRow
from durabot.transport.polling import Poller
from durabot.transport.telegram import make_bot
from durabot.transport.webhook import SECRET_HEADER, WebhookServer
from tests.fake_bot_api import FakeBotApi
from tests.integration.conftest import Harness

BOT_ID = 4242
BOT_USERNAME = "FuzzBot"
SECRET = "fuzz-secret"
EXAMPLES = 36
UPDATES_PER_EXAMPLE = (60, 80)
"""36 examples of 60-80 updates: about 2,500 per database, 1,600 of them mutated (3,200 in all), half per transport."""

_update_ids = itertools.count(1)
"""Unique across examples, which share one database."""
_chat_numbers = itertools.count(1)

TEXTS = ["/start", "/help", "/library", "/addmachine", "Press 3", "/skip", "/back", "/cancel", "hello",
         "/library@FuzzBot", "/library@OtherBot", "/addmachine@fuzzbot"]
BUTTON_DATA = ["lib:2", "lib:1", "f:1:2:s", "f:9:9:x", "garbage", ""]
STRANGE_TEXT = st.sampled_from(["\x00", "\ud800", "a\udfffb", "\x00\ud83d", "🙂" * 3000, "x" * 5000, "\u202e\u200b"])
HUGE_INT = st.sampled_from([2**31, 2**53, -(2**53), 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40])
DEEP = st.integers(1, 60).map(lambda depth: json.loads("[" * depth + "]" * depth))
LEAF = (
    st.none() | st.booleans() | st.integers() | HUGE_INT | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | STRANGE_TEXT | DEEP
)
JSON = st.recursive(
    LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6) | STRANGE_TEXT, inner, max_size=3),
    max_leaves=8,
)
BAD_UPDATE_ID = (
    st.booleans() | st.none() | st.text(max_size=5) | st.floats() | st.integers(max_value=-1)
    | st.integers(min_value=2**63) | st.lists(st.integers(), max_size=2) | st.just({"id": 1})
)
MESSAGE_PATHS = [("message",), ("message", "chat"), ("message", "chat", "id"), ("message", "from"),
                 ("message", "from", "id"), ("message", "text"), ("message", "entities"), ("message", "photo"),
                 ("message", "chat", "type"), ("edited_message",)]
BUTTON_PATHS = [("callback_query",), ("callback_query", "from"), ("callback_query", "from", "id"),
                ("callback_query", "id"), ("callback_query", "data"), ("callback_query", "message"),
                ("callback_query", "message", "chat"), ("callback_query", "message", "chat", "id"),
                ("my_chat_member",)]
DELETE = object()


@dataclass(frozen=True)
class Mutation:
    """Set ``path`` to ``value`` (or delete it), or break the update_id, or replace the whole update."""

    path: tuple[str, ...]
    value: Any


FIELD_MUTATION = st.builds(Mutation, st.sampled_from(MESSAGE_PATHS + BUTTON_PATHS), JSON | st.just(DELETE))
ID_MUTATION = st.builds(Mutation, st.just(("update_id",)), BAD_UPDATE_ID | st.just(DELETE))
WHOLE_MUTATION = st.builds(Mutation, st.just(()), JSON)
MUTATION = st.sampled_from([FIELD_MUTATION] * 18 + [ID_MUTATION, WHOLE_MUTATION]).flatmap(lambda chosen: chosen)
"""Mostly one field set to any JSON value or deleted; now and then the update_id or the whole update."""


@dataclass(frozen=True)
class Spec:
    """One update of an example: in which chat, what kind, what it says, and how it is mutated (if at all)."""

    chat: int
    kind: str
    choice: int
    mutations: tuple[Mutation, ...]


SPEC = st.builds(
    Spec,
    st.integers(0, 3),
    st.sampled_from(["text", "button"]),
    st.integers(0, 100),
    st.sampled_from([st.just(())] + [st.lists(MUTATION, min_size=1, max_size=3).map(tuple)] * 3).flatmap(lambda s: s),
)
"""About one update in four well-formed, the others mutated one to three times."""


@dataclass
class Sent:
    """An update as sent, and what the test expects of it."""

    update_id: int
    raw: Any
    usable: bool
    expected: str | None
    """"applied" or "ignored" for a well-formed update; ``None`` for a mutated one (any terminal outcome)."""


def well_formed(spec: Spec, update_id: int, chat_id: int) -> dict[str, Any]:
    user = {"id": abs(chat_id) % 10**9 + 1, "is_bot": False, "first_name": "Fuzz"}
    chat = {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
    if spec.kind == "text":
        text = TEXTS[spec.choice % len(TEXTS)]
        message = {"message_id": update_id, "date": 1_700_000_000, "chat": chat, "from": user, "text": text}
        return {"update_id": update_id, "message": message}
    under = {"message_id": 1, "date": 1_700_000_000, "chat": chat, "text": "Your library"}
    query = {"id": f"cb-{update_id}", "from": user, "chat_instance": "ci", "message": under,
             "data": BUTTON_DATA[spec.choice % len(BUTTON_DATA)]}
    return {"update_id": update_id, "callback_query": query}


def mutate(raw: Any, mutation: Mutation) -> Any:
    if not mutation.path:
        return copy.deepcopy(mutation.value)
    node = raw
    for key in mutation.path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        if mutation.value is DELETE:
            node.pop(mutation.path[-1], None)
        else:
            node[mutation.path[-1]] = copy.deepcopy(mutation.value)
    return raw


def build(specs: Sequence[Spec]) -> list[Sent]:
    chats = [next(_chat_numbers) * (1 if n % 2 else -1) for n in range(4)]
    sent = []
    for spec in specs:
        update_id = next(_update_ids)
        raw: Any = well_formed(spec, update_id, chats[spec.chat])
        for mutation in spec.mutations:
            raw = mutate(raw, mutation)
        usable = isinstance(raw, dict) and raw.get("update_id") == update_id and type(raw["update_id"]) is int
        expected = None
        if not spec.mutations:
            text = raw.get("message", {}).get("text", "")
            expected = "ignored" if text.startswith("/library@OtherBot") else "applied"
        sent.append(Sent(update_id, raw, usable, expected))
    return sent


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(BOT_ID, BOT_USERNAME) as api:
        yield api


@pytest.fixture
async def webhook(harness: Harness) -> AsyncIterator[WebhookServer]:
    server = WebhookServer(
        harness.engine, "https://bot.example/hook", SECRET, "127.0.0.1", 0, bot_id=BOT_ID, bot_username=BOT_USERNAME
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def poller(harness: Harness, bot_api: FakeBotApi) -> AsyncIterator[Poller]:
    async with make_bot(f"{BOT_ID}:fuzz-token", bot_api.url) as bot:
        yield Poller(bot, harness.engine, long_poll_seconds=0)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def through_webhook(http: aiohttp.ClientSession, webhook: WebhookServer, sent: list[Sent]) -> None:
    url = f"http://127.0.0.1:{webhook.port}{webhook.path}"
    for update in sent:
        body = json.dumps(update.raw).encode()
        async with http.post(url, data=body, headers={SECRET_HEADER: SECRET}) as response:
            assert response.status < 500, f"update {update.update_id}: {response.status}"
            assert response.status == (200 if update.usable else 400), f"update {update.update_id}"


async def through_poller(poller: Poller, bot_api: FakeBotApi, sent: list[Sent]) -> None:
    bot_api.results.append([update.raw for update in sent])
    await poller.poll_once()
    usable = [update.update_id for update in sent if update.usable]
    if usable:
        assert poller.offset == max(usable) + 1, "the batch was not confirmed"


async def outcomes(harness: Harness, update_ids: list[int]) -> dict[int, list[str | None]]:
    found: dict[int, list[str | None]] = {}
    query = select(TelegramUpdateRow.update_id, TelegramUpdateRow.outcome).where(
        TelegramUpdateRow.bot_id == BOT_ID, TelegramUpdateRow.update_id.in_(update_ids)
    )
    async with harness.database.engine.connect() as connection:
        for update_id, outcome in (await connection.execute(query)).all():
            found.setdefault(update_id, []).append(outcome)
    return found


async def pending_rows(harness: Harness) -> int:
    query = select(func.count()).select_from(TelegramUpdateRow).where(TelegramUpdateRow.processed_at.is_(None))
    async with harness.database.engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def apply_everything(harness: Harness) -> None:
    for _ in range(50):
        if not await harness.engine.process_pending():
            return
    raise AssertionError("updates kept coming back pending")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
@given(specs=st.lists(SPEC, min_size=UPDATES_PER_EXAMPLE[0], max_size=UPDATES_PER_EXAMPLE[1]))
async def test_no_mutated_update_stalls_a_chat_or_gets_a_5xx(
    harness: Harness,
    webhook: WebhookServer,
    poller: Poller,
    bot_api: FakeBotApi,
    http: aiohttp.ClientSession,
    specs: list[Spec],
) -> None:
    sent = build(specs)
    half = len(sent) // 2
    await through_webhook(http, webhook, sent[:half])
    await through_poller(poller, bot_api, sent[half:])
    await apply_everything(harness)

    assert await pending_rows(harness) == 0, "a row was left pending"
    stored = await outcomes(harness, [update.update_id for update in sent])
    for update in sent:
        if not update.usable:
            assert update.update_id not in stored
            continue
        found = stored.get(update.update_id, [])
        assert len(found) == 1, f"update {update.update_id} stored as {found}"
        [outcome] = found
        if update.expected is not None:
            assert outcome == update.expected, f"well-formed update {update.update_id}: {outcome}"
        else:
            assert outcome in ("applied", "ignored"), f"mutated update {update.update_id}: {outcome}"


async def test_a_polled_update_with_a_number_json_has_not_is_stored_and_its_batch_confirmed(
    harness: Harness, poller: Poller, bot_api: FakeBotApi
) -> None:
    """Python's JSON parser (and so python-telegram-bot's) accepts ``NaN``; PostgreSQL's JSON does not."""
    update_id = next(_update_ids)
    raw = well_formed(Spec(0, "text", 0, ()), update_id, next(_chat_numbers))
    raw["message"]["entities"] = [{"offset": float("nan"), "length": float("inf")}]
    bot_api.results.append([raw])
    await poller.poll_once()
    assert poller.offset == update_id + 1
    await apply_everything(harness)
    assert await outcomes(harness, [update_id]) == {update_id: ["applied"]}
