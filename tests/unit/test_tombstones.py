"""The expiry notice is never lost: a conversation the cleanup removed leaves a tombstone the next message finds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from durabot.clock import FakeClock
from durabot.engine.conversation import TOMBSTONE_RETENTION
from durabot.engine.runner import Engine
from durabot.replies import CallbackAnswer
from durabot.testing import FakeUnitOfWorkFactory
from tests.unit.driver import TTL, Chat

EXPIRED_NOTICE = (
    "Your unfinished conversation (adding a machine to your library) expired after a long pause "
    "and was cleared. Send /addmachine to start again."
)
INTAKE_PAUSED = (
    "You paused your intake for a while. Everything you entered is saved: "
    "send /intake_start to carry on where you left off."
)
NOTHING_ASKED = "I'm not asking you anything right now."


async def expire_and_clean_up(engine: Engine, clock: FakeClock) -> None:
    clock.advance(TTL + timedelta(minutes=1))
    assert await engine.cleanup() == 1


async def test_the_next_message_after_the_cleanup_gets_the_notice_once(
    chat: Chat, engine: Engine, clock: FakeClock, factory: FakeUnitOfWorkFactory
) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    await expire_and_clean_up(engine, clock)
    assert chat.conversations() == []
    assert len(factory.data.tombstones) == 1

    assert (await chat.say("Amada")).texts == [EXPIRED_NOTICE]
    assert factory.data.tombstones == {}
    assert (await chat.say("Amada")).text.startswith(NOTHING_ASKED)


async def test_the_command_that_starts_again_also_gets_the_notice(
    chat: Chat, engine: Engine, clock: FakeClock
) -> None:
    await chat.say("/addmachine")
    await expire_and_clean_up(engine, clock)
    turn = await chat.say("/addmachine")
    assert turn.texts[0] == EXPIRED_NOTICE
    assert turn.text.startswith("Step 1 of 6 · Nickname")


async def test_a_button_pressed_after_the_cleanup_has_expired_and_gets_the_notice(
    chat: Chat, engine: Engine, clock: FakeClock
) -> None:
    question = await chat.say("/addmachine")
    await chat.say("Press 3")
    await expire_and_clean_up(engine, clock)
    turn = await chat.press("Cancel", turn=question)
    assert turn.callback_answers == [CallbackAnswer(f"cb-{turn.applied[0].update_id}", "This button has expired.")]
    assert turn.texts == [EXPIRED_NOTICE]


async def test_an_intake_removed_by_the_cleanup_is_told_paused_and_resumes(
    chat: Chat, engine: Engine, clock: FakeClock, factory: FakeUnitOfWorkFactory
) -> None:
    await chat.say("/intake_start")
    await chat.say("Maria Ivanova")
    await expire_and_clean_up(engine, clock)
    assert (await chat.say("maria@example.org")).texts == [INTAKE_PAUSED]
    assert factory.data.tombstones == {}
    second = await chat.say("maria@example.org")
    assert second.texts == [INTAKE_PAUSED], "an open intake is saved, so it is mentioned until resumed"
    resumed = await chat.say("/intake_start")
    assert resumed.texts[0].startswith("Welcome back!") and "Maria Ivanova" in resumed.text


async def test_resuming_the_intake_right_after_the_cleanup_needs_no_notice(
    chat: Chat, engine: Engine, clock: FakeClock, factory: FakeUnitOfWorkFactory
) -> None:
    await chat.say("/intake_start")
    await chat.say("Maria Ivanova")
    await expire_and_clean_up(engine, clock)
    turn = await chat.say("/intake_start")
    assert len(turn.texts) == 1 and turn.text.startswith("Welcome back!")
    assert factory.data.tombstones == {}


async def test_a_tombstone_belongs_to_its_chat(
    chat: Chat, engine: Engine, clock: FakeClock, factory: FakeUnitOfWorkFactory, update_ids: Iterator[int]
) -> None:
    elsewhere = Chat(engine, factory, update_ids, chat_id=-55, user_id=chat.user_id)
    await chat.say("/addmachine")
    await expire_and_clean_up(engine, clock)
    assert (await elsewhere.say("hello")).text.startswith(NOTHING_ASKED)
    assert (await chat.say("hello")).texts == [EXPIRED_NOTICE]


async def test_an_expiry_during_another_conversation_is_told_once_that_one_is_over(
    chat: Chat, engine: Engine, clock: FakeClock
) -> None:
    await chat.say("/intake_start")
    clock.advance(timedelta(hours=20))
    await chat.say("/addmachine")
    clock.advance(timedelta(hours=5))
    assert await engine.cleanup() == 1
    turn = await chat.say("Press 3")
    assert turn.texts == [turn.text] and turn.text.startswith("Step 2 of 6"), "the live conversation goes on"
    await chat.say("/cancel")
    assert (await chat.say("hello")).texts == [INTAKE_PAUSED]
    assert (await chat.say("/library")).text.startswith("Your library is empty.")


async def test_tombstones_are_removed_after_thirty_days(
    chat: Chat, engine: Engine, clock: FakeClock, factory: FakeUnitOfWorkFactory
) -> None:
    await chat.say("/addmachine")
    await expire_and_clean_up(engine, clock)
    clock.advance(TOMBSTONE_RETENTION - timedelta(minutes=1))
    await engine.cleanup()
    assert len(factory.data.tombstones) == 1
    clock.advance(timedelta(minutes=2))
    await engine.cleanup()
    assert factory.data.tombstones == {}
    assert (await chat.say("hello")).text.startswith(NOTHING_ASKED)
