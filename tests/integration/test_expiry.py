"""Expiry: conversations expire 24 h after their last step, are cleaned up, and start fresh."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.conftest import Chat, Harness


async def test_every_step_moves_expiry_forward(chat: Chat, harness: Harness) -> None:
    await chat.say("/addmachine")
    harness.clock.advance(hours=23)
    await chat.say("Dryer")
    [row] = await harness.conversations()
    assert row.expires_at == harness.clock.now + timedelta(hours=24)
    harness.clock.advance(hours=23)
    assert (await chat.say("Miele"))[0].startswith("Step 3 of 6")


async def test_an_expired_conversation_is_cleared_and_the_next_command_starts_fresh(
    chat: Chat, harness: Harness
) -> None:
    await chat.say("/addmachine")
    await chat.say("Dryer")
    harness.clock.advance(hours=24, seconds=1)
    replies = await chat.say("Miele")
    assert replies[0].startswith("Your unfinished conversation (adding a machine to your library) expired")
    assert "/addmachine" in replies[0]
    assert await harness.conversations() == []
    assert (await chat.say("/addmachine"))[0].startswith("Step 1 of 6 · Nickname")
    assert await harness.machines() == []


async def test_cleanup_removes_expired_conversations_only(harness: Harness) -> None:
    stale, live = Chat(harness, 1, 1), Chat(harness, 2, 2)
    await stale.say("/addmachine")
    harness.clock.advance(hours=20)
    await live.say("/addmachine")
    harness.clock.advance(hours=5)
    assert await harness.engine.cleanup() == 1
    [remaining] = await harness.conversations()
    assert remaining.chat_id == 2
    assert await harness.engine.cleanup() == 0
    notice, question = await stale.say("/addmachine")
    assert notice.startswith("Your unfinished conversation (adding a machine to your library) expired")
    assert question.startswith("Step 1 of 6")


async def test_cleanup_forgets_applied_updates_only_after_a_week(chat: Chat, harness: Harness) -> None:
    from durabot.storage.tables import TelegramUpdateRow

    await chat.say("/help")
    harness.clock.advance(days=6)
    await chat.say("/help")
    await harness.engine.cleanup()
    assert len(await harness.rows(TelegramUpdateRow)) == 2
    harness.clock.advance(days=1, seconds=1)
    await harness.engine.cleanup()
    assert len(await harness.rows(TelegramUpdateRow)) == 1
