"""The intake and the personal-data commands run in private chats only; a group is pointed to the private chat."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from durabot.bootstrap import build_engine, build_registry
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.engine.conversation import Conversation
from durabot.engine.runner import Engine
from durabot.flows.eb1a_intake import EB1A_INTAKE
from durabot.flows.model import Answers
from durabot.replies import Button, CallbackAnswer, Document, Reply
from durabot.testing import FakeUnitOfWorkFactory
from tests.unit.driver import TTL, Chat

USER = 7
GROUP = -100_200_300
BOT = "durabot_test_bot"
INTAKE_NOTE = "Please message me privately to continue your intake."
FIRST_QUESTION = "Basic information (part 1 of 6) · Question 1 of 8"
INTAKE_COMMANDS = ["/intake_start", "/intake_status", "/intake_resume", "/intake_cancel", "/start intake"]
PERSONAL = ["Maria Ivanova", "maria@example.org", "+1 555 123 4567", "1985-04-03"]


@pytest.fixture
def engine(factory: FakeUnitOfWorkFactory, settings: Settings, clock: FakeClock) -> Engine:
    return build_engine(factory, settings, clock, build_registry(clock, bot_username=BOT))


@pytest.fixture
def private(engine: Engine, factory: FakeUnitOfWorkFactory, update_ids: Iterator[int]) -> Chat:
    return Chat(engine, factory, update_ids, chat_id=USER, user_id=USER)


@pytest.fixture
def group(engine: Engine, factory: FakeUnitOfWorkFactory, update_ids: Iterator[int]) -> Chat:
    return Chat(engine, factory, update_ids, chat_id=GROUP, user_id=USER)


def link_to_private_chat(start: str) -> tuple[tuple[Button, ...], ...]:
    return ((Button.link("Continue in private chat", f"https://t.me/{BOT}?start={start}"),),)


@pytest.mark.parametrize("command", INTAKE_COMMANDS)
async def test_every_intake_command_in_a_group_points_to_the_private_chat(
    group: Chat, factory: FakeUnitOfWorkFactory, command: str
) -> None:
    turn = await group.say(command)
    assert turn.replies == [Reply(INTAKE_NOTE, link_to_private_chat("intake"))]
    assert factory.data.cases == {} and factory.data.progress == {}
    assert group.conversations() == []


async def test_without_the_bot_username_the_group_is_told_in_words(
    factory: FakeUnitOfWorkFactory, settings: Settings, clock: FakeClock, update_ids: Iterator[int]
) -> None:
    group = Chat(build_engine(factory, settings, clock), factory, update_ids, chat_id=GROUP, user_id=USER)
    turn = await group.say("/intake_status")
    assert turn.replies == [Reply(f"{INTAKE_NOTE} Open a private chat with me and send /intake_start there.")]


async def test_an_intake_begun_privately_is_never_shown_in_a_group(private: Chat, group: Chat) -> None:
    await private.say("/intake_start")
    for answer in PERSONAL:
        await private.say(answer)
    for text in [*INTAKE_COMMANDS[:3], "Bulgaria", "/skip", "/back", "/help", "/cancel"]:
        for reply in (await group.say(text)).texts:
            assert not any(value in reply for value in PERSONAL), f"{text!r} showed an answer: {reply!r}"
            assert "Question" not in reply, f"{text!r} asked an intake question in the group: {reply!r}"
    resumed = await private.say("/intake_resume")
    assert resumed.text.startswith("Welcome back!") and "Maria Ivanova" in resumed.text
    assert "Question 5 of 8" in resumed.text, "nothing typed in the group reached the intake"


async def test_plain_text_in_a_group_does_not_mention_a_paused_intake(private: Chat, group: Chat) -> None:
    await private.say("/intake_start")
    await private.say("Maria Ivanova")
    turn = await group.say("hello")
    assert turn.text.startswith("I'm not asking you anything right now.")
    assert "intake" not in turn.text.split("\n\n", 1)[0]


async def test_an_intake_conversation_left_in_a_group_is_dropped_not_continued(
    private: Chat, group: Chat, factory: FakeUnitOfWorkFactory, clock: FakeClock
) -> None:
    await private.say("/intake_start")
    await private.say("Maria Ivanova")
    legacy = Conversation.start(EB1A_INTAKE, USER, GROUP, clock(), TTL)
    legacy = replace(legacy, id=999, version=1, answers=Answers({"full_name": "Maria Ivanova"}, ("full_name",)))
    factory.data.conversations[999] = legacy

    turn = await group.say("maria@example.org")
    assert turn.text.startswith("I'm not asking you anything right now.")
    assert group.conversations() == []
    [progress] = factory.data.progress.values()
    assert "email" not in progress.answers["answers"], "the group's message was not taken as an answer"


async def test_start_intake_in_the_private_chat_starts_and_then_resumes_the_intake(private: Chat) -> None:
    assert (await private.say("/start intake")).text.startswith(FIRST_QUESTION)
    await private.say("Maria Ivanova")
    resumed = await private.say("/start intake")
    assert resumed.text.startswith("Welcome back!")
    assert "Question 2 of 8" in resumed.text


@pytest.mark.parametrize("command", ["/delete_my_data", "/export_my_data", "/start export_my_data"])
async def test_the_personal_data_commands_in_a_group_point_to_the_private_chat(
    private: Chat, group: Chat, factory: FakeUnitOfWorkFactory, command: str
) -> None:
    await private.add_machine("Press 3")
    turn = await group.say(command)
    name = command.split()[-1].lstrip("/")
    [reply] = turn.replies
    assert reply.text.startswith("Please message me privately to")
    assert reply.buttons == link_to_private_chat(name)
    assert not [m for m in turn.outgoing if isinstance(m, Document)]
    assert len(factory.data.machines) == 1


async def test_the_delete_button_pressed_in_a_group_deletes_nothing(
    private: Chat, group: Chat, factory: FakeUnitOfWorkFactory
) -> None:
    await private.add_machine("Press 3")
    confirm = await private.say("/delete_my_data")
    turn = await group.press_data(confirm.buttons["Yes, delete"])
    note = "Please message me privately to delete your data."
    assert turn.outgoing == [CallbackAnswer(f"cb-{turn.applied[0].update_id}", note)]
    assert len(factory.data.machines) == 1


async def test_start_with_a_personal_data_command_runs_it_in_the_private_chat(private: Chat) -> None:
    turn = await private.say("/start export_my_data")
    [document] = [m for m in turn.outgoing if isinstance(m, Document)]
    assert document.filename == "my-data.json"
    confirm = await private.say("/start delete_my_data")
    assert set(confirm.buttons) == {"Yes, delete", "Keep my data"}


async def test_other_commands_still_work_in_a_group(group: Chat, factory: FakeUnitOfWorkFactory) -> None:
    assert (await group.say("/start")).text.startswith("Hello!")
    assert (await group.say("/addmachine")).text.startswith("Step 1 of 6 · Nickname")
