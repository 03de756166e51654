"""The expiry notice survives the cleanup, on SQLite and PostgreSQL: the cleanup leaves a tombstone."""

from __future__ import annotations

from datetime import timedelta

from durabot.engine.conversation import TOMBSTONE_RETENTION
from durabot.storage.tables import ConversationTombstoneRow
from tests.integration.conftest import Chat, Harness

EXPIRED_NOTICE = (
    "Your unfinished conversation (adding a machine to your library) expired after a long pause "
    "and was cleared. Send /addmachine to start again."
)
NOTHING_ASKED = "I'm not asking you anything right now."


async def test_after_the_cleanup_the_next_message_gets_the_notice_and_the_one_after_the_usual_answer(
    chat: Chat, harness: Harness
) -> None:
    await chat.say("/addmachine")
    await chat.say("Dryer")
    harness.clock.advance(hours=24, seconds=1)
    assert await harness.engine.cleanup() == 1
    assert await harness.conversations() == []
    [tombstone] = await harness.rows(ConversationTombstoneRow)
    assert (tombstone.user_id, tombstone.chat_id) == (chat.user_id, chat.chat_id)
    assert tombstone.conversation_type == "add_machine"
    assert tombstone.created_at == harness.clock.now

    assert await chat.say("Miele") == [EXPIRED_NOTICE]
    assert await harness.rows(ConversationTombstoneRow) == []
    assert (await chat.say("Miele"))[0].startswith(NOTHING_ASKED)


async def test_tombstones_go_after_thirty_days(chat: Chat, harness: Harness) -> None:
    await chat.say("/addmachine")
    harness.clock.advance(hours=25)
    await harness.engine.cleanup()
    harness.clock.advance(seconds=(TOMBSTONE_RETENTION - timedelta(minutes=1)).total_seconds())
    await harness.engine.cleanup()
    assert len(await harness.rows(ConversationTombstoneRow)) == 1
    harness.clock.advance(minutes=2)
    await harness.engine.cleanup()
    assert await harness.rows(ConversationTombstoneRow) == []
    assert (await chat.say("Miele"))[0].startswith(NOTHING_ASKED)


async def test_an_intake_removed_by_the_cleanup_is_told_it_was_paused(chat: Chat, harness: Harness) -> None:
    await chat.say("/intake_start")
    await chat.say("Maria Ivanova")
    harness.clock.advance(hours=25)
    assert await harness.engine.cleanup() == 1
    [paused] = await chat.say("maria@example.org")
    assert paused.startswith("You paused your intake for a while. Everything you entered is saved")
    assert await harness.rows(ConversationTombstoneRow) == []
    resumed = await chat.say("/intake_start")
    assert resumed[0].startswith("Welcome back!") and "Maria Ivanova" in resumed[0]
