"""The intake runs in private chats only, on SQLite and PostgreSQL: a group gets a pointer, never an answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from durabot.bootstrap import build_registry
from durabot.clock import FakeClock
from durabot.storage.tables import CaseRow, ConversationStateRow, OutboxMessageRow
from tests.conftest import ScratchDatabase
from tests.integration.conftest import Chat, Harness
from tests.integration.intake_answers import BASIC

GROUP = -1_001_234
NOTE = "Please message me privately to continue your intake."
LINK = {"label": "Continue in private chat", "url": "https://t.me/durabot_it_bot?start=intake"}


@pytest.fixture
async def harness(test_db: ScratchDatabase, clock: FakeClock) -> AsyncIterator[Harness]:
    h = Harness(test_db, clock, build_registry(clock, bot_username="durabot_it_bot"))
    yield h
    await h.close()


async def test_intake_commands_in_a_group_get_a_link_to_the_private_chat_and_touch_nothing(
    harness: Harness,
) -> None:
    group = Chat(harness, chat_id=GROUP, user_id=701)
    for command in ("/intake_start", "/intake_status", "/intake_resume", "/intake_cancel", "/start intake"):
        assert await group.say(command) == [NOTE]
    assert await harness.rows(CaseRow) == [] and await harness.conversations() == []
    rows = await harness.rows(OutboxMessageRow, OutboxMessageRow.chat_id == GROUP)
    assert len(rows) == 5 and all(row.payload["buttons"] == [[LINK]] for row in rows)


async def test_no_answer_of_a_private_intake_is_ever_sent_to_the_group(harness: Harness) -> None:
    private, group = Chat(harness, chat_id=701, user_id=701), Chat(harness, chat_id=GROUP, user_id=701)
    await private.say("/intake_start")
    for _, answer in BASIC[:4]:
        await private.say(answer)
    for text in ("/intake_start", "/intake_status", "/intake_resume", "Bulgaria", "/help", "/cancel"):
        await group.say(text)
    sent_to_group = " ".join(await harness.outbox_texts(GROUP))
    for _, answer in BASIC[:4]:
        assert answer not in sent_to_group
    assert "Question" not in sent_to_group
    [conversation] = await harness.rows(ConversationStateRow)
    assert conversation.chat_id == 701
    resumed = await private.say("/start intake")
    assert resumed[0].startswith("Welcome back!") and "Question 5 of 8" in resumed[0]
