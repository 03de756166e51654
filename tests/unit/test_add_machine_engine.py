"""The add-machine flow driven through the engine on the in-memory fakes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pytest

from durabot.actions.add_machine import AddMachineActions
from durabot.bootstrap import build_registry
from durabot.clock import FakeClock
from durabot.domain.machines import Machine
from durabot.engine.events import Event
from durabot.engine.ports import Domains
from durabot.engine.registry import FlowEntry
from durabot.engine.runner import APOLOGY, Engine
from durabot.flows.add_machine import ADD_MACHINE, draft_from_answers
from durabot.flows.model import Answers
from durabot.replies import CallbackAnswer, Reply
from durabot.testing import FakeUnitOfWorkFactory
from tests.unit.driver import TTL, Chat, Turn

EXPIRED = "This button has expired."
CANCELLED = "Cancelled — you are no longer adding a machine to your library. Nothing from it was saved."
EXPIRED_NOTICE = (
    "Your unfinished conversation (adding a machine to your library) expired after a long pause "
    "and was cleared. Send /addmachine to start again."
)
COMMANDS = ("/addmachine", "/library", "/skip", "/back", "/cancel", "/help")
DETAIL_KEYS = ("manufacturer", "model_number", "serial_number", "location", "notes")


def fields(machine: Machine) -> dict[str, Any]:
    """A saved machine's typed fields (without id, timestamp and photo)."""
    data = asdict(machine)
    del data["id"], data["created_at"], data["photo_file_id"]
    return data


def only_nickname(user_id: int, nickname: str) -> dict[str, Any]:
    return {"user_id": user_id, "nickname": nickname, **dict.fromkeys(DETAIL_KEYS)}


def assert_asked_again(turn: Turn, question: Turn, lead: str) -> None:
    """``turn`` is exactly ``question`` again, led by ``lead``, with the same buttons."""
    assert turn.texts == [f"{lead}\n\n{question.text}"]
    assert turn.button_rows == question.button_rows


def inbox_outcome(factory: FakeUnitOfWorkFactory, update_id: int) -> str | None:
    return next(r.outcome for r in reversed(factory.data.inbox.values()) if r.update_id == update_id)


# -- the whole flow ----------------------------------------------------------------------


async def test_full_flow_saves_exactly_the_typed_fields_and_clears_the_conversation(
    chat: Chat, factory: FakeUnitOfWorkFactory
) -> None:
    assert (await chat.say("/addmachine")).text.startswith("Step 1 of 6 · Nickname\nWhat do you call this machine?")
    assert (await chat.say("Press 3 (Hall B)")).text.startswith("Step 2 of 6 · Manufacturer\nWho made it?")
    assert (await chat.say("  Amada  ")).text.startswith("Step 3 of 6 · Model number")
    assert (await chat.say("HFE 100-3")).text.startswith("Step 4 of 6 · Serial number")
    assert (await chat.say("SN 4411-A")).text.startswith("Step 5 of 6 · Location")
    assert (await chat.say("Site 2, hall B, line 4")).text.startswith("Step 6 of 6 · Notes")
    done = await chat.say("Check the hydraulic oil weekly.")

    assert [fields(m) for m in factory.data.machines] == [
        {
            "user_id": 7,
            "nickname": "Press 3 (Hall B)",
            "manufacturer": "Amada",
            "model_number": "HFE 100-3",
            "serial_number": "SN 4411-A",
            "location": "Site 2, hall B, line 4",
            "notes": "Check the hydraulic oil weekly.",
        }
    ]
    assert chat.conversations() == []
    assert done.texts == [
        "Saved “Press 3 (Hall B)” to your library.\n"
        "• Manufacturer: Amada\n• Model number: HFE 100-3\n• Serial number: SN 4411-A\n"
        "• Location: Site 2, hall B, line 4\n• Notes: Check the hydraulic oil weekly.\n\n"
        "Send /library to see all your machines, or /addmachine to add another."
    ]
    assert done.buttons == {}


async def test_skipping_everything_saves_only_the_nickname(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    done = await chat.add_machine("Lathe 1")
    assert [fields(m) for m in factory.data.machines] == [only_nickname(7, "Lathe 1")]
    assert done.text.startswith("Saved “Lathe 1” to your library.\n• (no details given)")
    assert chat.conversations() == []


async def test_the_conversation_records_each_answer_as_it_goes(chat: Chat) -> None:
    await chat.say("/addmachine")
    await chat.say("Lathe 1")
    await chat.say("/skip")
    conversation = chat.conversation()
    assert conversation.answers == Answers({"nickname": "Lathe 1", "manufacturer": None}, ("nickname", "manufacturer"))
    assert conversation.current_step == "add_machine:model_number"


# -- cancel ------------------------------------------------------------------------------


async def test_cancel_clears_the_conversation_and_saves_nothing(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    await chat.say("Amada")
    turn = await chat.say("/cancel")
    assert turn.texts == [CANCELLED]
    assert chat.conversations() == []
    assert factory.data.machines == []
    assert (await chat.say("Press 3")).text.startswith("I'm not asking you anything right now.")


async def test_cancel_with_nothing_in_progress_says_so(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    turn = await chat.say("/cancel")
    assert turn.text.startswith("There is nothing in progress to cancel.\n\n/addmachine")
    assert factory.data.conversations == {}


# -- nicknames ---------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["Press 3", "press 3", "  PRESS   3  "])
async def test_a_nickname_already_in_the_library_is_refused_naming_the_machine(
    chat: Chat, factory: FakeUnitOfWorkFactory, typed: str
) -> None:
    await chat.add_machine("Press 3", manufacturer="Amada", model_number="HFE 100")
    question = await chat.say("/addmachine")
    before = chat.conversation()

    turn = await chat.say(typed)

    assert_asked_again(
        turn, question, "You already have a machine called “Press 3” (Amada HFE 100). Please choose a different nickname."
    )
    assert chat.conversation() == before
    assert len(factory.data.machines) == 1


async def test_another_users_nickname_does_not_clash(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    other = Chat(chat.engine, factory, chat.update_ids, chat_id=300, user_id=8)
    await other.add_machine("Press 3")
    await chat.add_machine("Press 3")
    assert sorted((m.user_id, m.nickname) for m in factory.data.machines) == [(7, "Press 3"), (8, "Press 3")]


@pytest.mark.parametrize("length", [1, 101])
async def test_a_nickname_of_the_wrong_length_is_refused(chat: Chat, length: int) -> None:
    question = await chat.say("/addmachine")
    before = chat.conversation()
    turn = await chat.say("N" * length)
    assert_asked_again(turn, question, f"A nickname needs 2 to 100 characters; yours has {length}.")
    assert chat.conversation() == before


@pytest.mark.parametrize("length", [2, 100])
async def test_a_nickname_of_2_to_100_characters_is_accepted(chat: Chat, length: int) -> None:
    await chat.say("/addmachine")
    turn = await chat.say("N" * length)
    assert turn.text.startswith("Step 2 of 6 · Manufacturer")
    assert chat.conversation().answers.values == {"nickname": "N" * length}


async def test_skip_on_the_required_nickname_is_refused(chat: Chat) -> None:
    question = await chat.say("/addmachine")
    before = chat.conversation()
    turn = await chat.say("/skip")
    assert_asked_again(turn, question, "The nickname is needed, so it can't be skipped.")
    assert chat.conversation() == before


# -- bad input gets the same question again, with nothing changed ------------------------

BadInput = Callable[[Chat], Awaitable[Turn]]

BAD_INPUTS: list[tuple[str, BadInput, str]] = [
    ("empty", lambda c: c.say(""), "That answer was empty."),
    ("whitespace", lambda c: c.say("  \n\t "), "That answer was empty."),
    (
        "too long",
        lambda c: c.say("x" * 1001),
        "That answer is 1,001 characters long; answers can be at most 1,000. Please shorten it.",
    ),
    ("photo", lambda c: c.content("photo"), "I can't use a photo here — please type your answer as text."),
    ("sticker", lambda c: c.content("sticker"), "I can't use a sticker here — please type your answer as text."),
    ("unknown command", lambda c: c.say("/frobnicate now"), "Sorry, /frobnicate is not a command I know."),
]


@pytest.mark.parametrize(("send_bad", "lead"), [(send, lead) for _, send, lead in BAD_INPUTS], ids=[n for n, *_ in BAD_INPUTS])
@pytest.mark.parametrize("at_step", [1, 2], ids=["at nickname", "at manufacturer"])
async def test_bad_input_gets_a_message_and_the_same_question_with_nothing_changed(
    chat: Chat, factory: FakeUnitOfWorkFactory, send_bad: BadInput, lead: str, at_step: int
) -> None:
    question = await chat.say("/addmachine")
    if at_step == 2:
        question = await chat.say("Press 3")
    before = chat.conversation()

    turn = await send_bad(chat)

    assert_asked_again(turn, question, lead)
    assert chat.conversation() == before
    assert factory.data.machines == []
    assert inbox_outcome(factory, turn.applied[0].update_id) == "applied"


async def test_an_answer_of_exactly_1000_characters_is_accepted(chat: Chat) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    turn = await chat.say("  " + "x" * 1000 + "  ")
    assert turn.text.startswith("Step 3 of 6 · Model number")
    assert chat.conversation().answers.values["manufacturer"] == "x" * 1000


# -- back ----------------------------------------------------------------------------------


async def test_back_at_the_first_question_says_there_is_nothing_to_go_back_to(chat: Chat) -> None:
    question = await chat.say("/addmachine")
    before = chat.conversation()
    turn = await chat.say("/back")
    assert_asked_again(turn, question, "This is the first question; there is nothing to go back to.")
    assert chat.conversation() == before


async def test_back_reopens_the_previous_question_showing_the_old_answer(
    chat: Chat, factory: FakeUnitOfWorkFactory
) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    await chat.say("Amada")
    turn = await chat.say("/back")
    assert turn.text.startswith("Going back. Your previous answer was: Amada\n\nStep 2 of 6 · Manufacturer")
    assert chat.conversation().answers == Answers({"nickname": "Press 3"}, ("nickname",))

    await chat.say("Trumpf")
    for _ in range(4):
        await chat.say("/skip")
    assert [m.manufacturer for m in factory.data.machines] == ["Trumpf"]


async def test_back_after_a_skip_and_back_again_to_the_nickname(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    await chat.say("/skip")
    first = await chat.say("/back")
    assert first.text.startswith("Going back. Your previous answer was: — (skipped)\n\nStep 2 of 6 · Manufacturer")
    second = await chat.say("/back")
    assert second.text.startswith("Going back. Your previous answer was: Press 3\n\nStep 1 of 6 · Nickname")
    assert chat.conversation().answers == Answers()
    await chat.add_machine("Press 4")
    assert [m.nickname for m in factory.data.machines] == ["Press 4"]


# -- resuming and help -------------------------------------------------------------------


async def test_addmachine_while_in_progress_welcomes_back_with_answers_so_far(chat: Chat) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    await chat.say("/skip")
    question = await chat.say("HFE 100")
    answers_before = chat.conversation().answers

    turn = await chat.say("/addmachine")

    assert turn.text == (
        "Welcome back! You were adding a machine to your library. So far:\n"
        "• Nickname: Press 3\n• Manufacturer: — (skipped)\n• Model number: HFE 100\n\n" + question.text
    )
    assert turn.text.endswith("Step 4 of 6 · Serial number\nWhat is its serial number?\n"
                              "(/skip to leave it out, /back to change the previous answer, /cancel to stop.)")
    assert list(turn.buttons) == ["Skip", "Cancel"]
    assert chat.conversation().answers == answers_before


async def test_addmachine_right_after_starting_says_nothing_entered_yet(chat: Chat) -> None:
    await chat.say("/addmachine")
    turn = await chat.say("/addmachine")
    assert turn.text.startswith("Welcome back! You were adding a machine to your library. So far:\nNothing entered yet.")
    assert len(chat.conversations()) == 1


@pytest.mark.parametrize("command", ["/help", "/start"])
async def test_help_and_start_list_the_commands(chat: Chat, command: str) -> None:
    turn = await chat.say(command)
    assert len(turn.replies) == 1
    for name in COMMANDS:
        assert f"\n{name} — " in "\n" + turn.text
    assert turn.text.startswith("Hello! ") == (command == "/start")


async def test_help_during_the_flow_reminds_of_the_current_question(chat: Chat) -> None:
    await chat.say("/addmachine")
    question = await chat.say("Press 3")
    before = chat.conversation()
    turn = await chat.say("/help")
    assert len(turn.replies) == 2
    assert "/addmachine — " in turn.texts[0]
    assert turn.texts[1] == f"You are still adding a machine to your library; here is where you were:\n\n{question.text}"
    assert chat.conversation() == before


async def test_plain_text_with_nothing_in_progress_points_to_the_commands(chat: Chat) -> None:
    turn = await chat.say("hello there")
    assert turn.text.startswith("I'm not asking you anything right now.\n\n/addmachine — ")
    assert chat.factory.data.conversations == {}


# -- buttons -------------------------------------------------------------------------------


async def test_the_required_first_question_only_has_a_cancel_button(chat: Chat) -> None:
    turn = await chat.say("/addmachine")
    assert list(turn.buttons) == ["Cancel"]


async def test_the_skip_button_skips_the_current_question(chat: Chat) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    turn = await chat.press("Skip")
    assert turn.outgoing[0] == CallbackAnswer(f"cb-{turn.applied[0].update_id}")
    assert turn.text.startswith("Step 3 of 6 · Model number")
    assert chat.conversation().answers.values == {"nickname": "Press 3", "manufacturer": None}


async def test_the_cancel_button_cancels(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    turn = await chat.press("Cancel")
    assert turn.outgoing == [CallbackAnswer(f"cb-{turn.applied[0].update_id}"), Reply(CANCELLED)]
    assert chat.conversations() == []
    assert factory.data.machines == []


async def test_skip_buttons_all_the_way_save_the_machine(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    for _ in range(5):
        turn = await chat.press("Skip")
    assert turn.text.startswith("Saved “Press 3” to your library.")
    assert [fields(m) for m in factory.data.machines] == [only_nickname(7, "Press 3")]


def assert_expired(turn: Turn) -> None:
    update_id = turn.applied[0].update_id
    assert turn.outgoing == [CallbackAnswer(f"cb-{update_id}", EXPIRED)]


async def test_a_button_from_an_earlier_step_has_expired_and_changes_nothing(chat: Chat) -> None:
    await chat.say("/addmachine")
    at_manufacturer = await chat.say("Press 3")
    await chat.say("Amada")
    before = chat.conversation()

    for label in ("Skip", "Cancel"):
        assert_expired(await chat.press(label, turn=at_manufacturer))
    assert chat.conversation() == before


async def test_buttons_from_before_a_welcome_back_have_expired(chat: Chat) -> None:
    await chat.say("/addmachine")
    question = await chat.say("Press 3")
    await chat.say("/addmachine")
    before = chat.conversation()
    assert_expired(await chat.press("Cancel", turn=question))
    assert chat.conversation() == before
    assert (await chat.press("Cancel")).texts == [CANCELLED]


async def test_a_button_from_a_finished_conversation_has_expired(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    for _ in range(4):
        last_question = await chat.say("/skip")
    await chat.say("/skip")
    assert len(factory.data.machines) == 1

    assert_expired(await chat.press("Skip", turn=last_question))
    assert_expired(await chat.press("Cancel", turn=last_question))
    assert len(factory.data.machines) == 1
    assert chat.conversations() == []


async def test_a_button_from_a_cancelled_conversation_has_expired_even_in_a_new_one(chat: Chat) -> None:
    await chat.say("/addmachine")
    old = await chat.say("Press 3")
    await chat.say("/cancel")
    assert_expired(await chat.press("Skip", turn=old))
    assert chat.conversations() == []

    await chat.say("/addmachine")
    await chat.say("Press 4")
    before = chat.conversation()
    assert_expired(await chat.press("Skip", turn=old))
    assert_expired(await chat.press("Cancel", turn=old))
    assert chat.conversation() == before


@pytest.mark.parametrize("data", ["f:", "f:1:1", "f:x:y:z", "f:1:1:9", "somebody-else:1", "lib:", "lib:0"])
async def test_button_data_that_is_not_understood_has_expired(chat: Chat, data: str) -> None:
    await chat.say("/addmachine")
    before = chat.conversation()
    assert_expired(await chat.press_data(data))
    assert chat.conversation() == before


@pytest.mark.parametrize("code", ["²", "١"])
async def test_a_forged_flow_button_with_a_non_ascii_digit_has_expired(
    chat: Chat, factory: FakeUnitOfWorkFactory, code: str
) -> None:
    """``str.isdigit`` accepts "²", which ``int`` then refuses: the press must not fail the update."""
    await chat.say("/addmachine")
    conversation = chat.conversation()
    turn = await chat.press_data(f"f:{conversation.id}:{conversation.version}:{code}")
    assert inbox_outcome(factory, turn.applied[0].update_id) == "applied"
    assert_expired(turn)


# -- each update is applied once -----------------------------------------------------------


async def test_the_same_update_twice_is_applied_once(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.say("/addmachine")
    event = Event.message(chat.next_update_id(), chat.chat_id, chat.user_id, "Press 3")
    first = await chat.engine.handle(event)
    outbox_rows = len(factory.data.outbox)
    after_first = chat.conversation()

    second = await chat.engine.handle(event)

    assert [a.update_id for a in first] == [event.update_id]
    assert second == []
    assert len(factory.data.outbox) == outbox_rows
    assert chat.conversation() == after_first
    assert [r.update_id for r in factory.data.outbox].count(event.update_id) == 1


async def test_the_same_button_press_twice_is_applied_once(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.say("/addmachine")
    turn = await chat.say("Press 3")
    press = Event.button(chat.next_update_id(), chat.chat_id, chat.user_id, turn.buttons["Skip"], "cb-twice")
    assert len(await chat.engine.handle(press)) == 1
    rows, state = len(factory.data.outbox), chat.conversation()
    assert await chat.engine.handle(press) == []
    assert len(factory.data.outbox) == rows
    assert chat.conversation() == state
    assert state.answers.values == {"nickname": "Press 3", "manufacturer": None}


async def test_every_reply_is_queued_in_the_outbox_for_its_update(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    turn = await chat.say("/addmachine")
    update_id = turn.applied[0].update_id
    assert [(r.chat_id, r.message) for r in factory.data.outbox if r.update_id == update_id] == [
        (chat.chat_id, turn.replies[0])
    ]
    assert inbox_outcome(factory, update_id) == "applied"


# -- expiry --------------------------------------------------------------------------------


async def test_a_conversation_left_for_over_24_hours_expires(chat: Chat, clock: FakeClock) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    clock.advance(TTL + timedelta(seconds=1))

    turn = await chat.say("Amada")
    assert turn.texts == [EXPIRED_NOTICE]
    assert chat.conversations() == []

    fresh = await chat.say("/addmachine")
    assert fresh.text.startswith("Step 1 of 6 · Nickname")
    assert chat.conversation().answers == Answers()


async def test_addmachine_after_expiry_starts_fresh_at_step_1(chat: Chat, clock: FakeClock) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    clock.advance(TTL)
    turn = await chat.say("/addmachine")
    assert turn.texts[0] == EXPIRED_NOTICE
    assert turn.text.startswith("Step 1 of 6 · Nickname")
    assert not turn.text.startswith("Welcome back")
    assert chat.conversation().answers == Answers()


async def test_a_conversation_touched_within_24_hours_lives_on(chat: Chat, clock: FakeClock) -> None:
    await chat.say("/addmachine")
    clock.advance(TTL - timedelta(seconds=1))
    await chat.say("Press 3")
    clock.advance(TTL - timedelta(seconds=1))
    turn = await chat.say("Amada")
    assert turn.text.startswith("Step 3 of 6 · Model number")
    assert chat.conversation().expires_at == clock.now + TTL


async def test_a_button_of_an_expired_conversation_has_expired_and_says_the_conversation_expired(
    chat: Chat, clock: FakeClock
) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 3")
    clock.advance(TTL + timedelta(minutes=1))
    turn = await chat.press("Skip")
    assert turn.callback_answers == [CallbackAnswer(f"cb-{turn.applied[0].update_id}", EXPIRED)]
    assert turn.texts == [
        "Your unfinished conversation (adding a machine to your library) expired after a long pause "
        "and was cleared. Send /addmachine to start again."
    ]
    assert isinstance(turn.outgoing[0], CallbackAnswer), "the press is acknowledged first"
    assert chat.conversations() == []
    assert (await chat.say("Press 3")).text.startswith("I'm not asking you anything right now.")


async def test_cleanup_removes_expired_conversations_but_not_live_ones(
    chat: Chat, engine: Engine, factory: FakeUnitOfWorkFactory, clock: FakeClock
) -> None:
    other = Chat(engine, factory, chat.update_ids, chat_id=200, user_id=8)
    await chat.say("/addmachine")
    clock.advance(timedelta(hours=12))
    await other.say("/addmachine")
    clock.advance(timedelta(hours=12, seconds=1))

    assert await engine.cleanup() == 1
    assert chat.conversations() == []
    assert len(other.conversations()) == 1
    assert await engine.cleanup() == 0
    assert (await other.say("Press 3")).text.startswith("Step 2 of 6")


# -- a failing domain write ----------------------------------------------------------------


class ExplodingActions(AddMachineActions):
    """Writes the machine, then fails as a broken database would, ``failures`` times."""

    def __init__(self, failures: int = 1_000_000) -> None:
        self.failures = failures

    async def complete(self, domains: Domains, user_id: int, answers: Answers) -> Reply:
        if self.failures <= 0:
            return await super().complete(domains, user_id, answers)
        self.failures -= 1
        await domains.machines.add(draft_from_answers(user_id, answers))
        raise RuntimeError("disk on fire")


def engine_with(actions: AddMachineActions, factory: FakeUnitOfWorkFactory, clock: FakeClock) -> Engine:
    registry = build_registry()
    registry.flows[:] = [FlowEntry(ADD_MACHINE, actions, entry.description) for entry in registry.flows]
    return Engine(factory, registry, ttl=TTL, clock=clock)


@pytest.fixture
def exploding(factory: FakeUnitOfWorkFactory, clock: FakeClock, update_ids: Iterator[int]) -> Chat:
    return Chat(engine_with(ExplodingActions(), factory, clock), factory, update_ids)


async def test_a_failing_write_saves_nothing_keeps_the_conversation_and_apologises(
    exploding: Chat, factory: FakeUnitOfWorkFactory
) -> None:
    await exploding.say("/addmachine")
    await exploding.say("Press 3")
    for _ in range(4):
        await exploding.say("/skip")
    before = exploding.conversation()
    outbox_rows = len(factory.data.outbox)

    turn = await exploding.say("Oil weekly")

    update_id = turn.applied[0].update_id
    assert [a.outcome for a in turn.applied] == ["failed"]
    assert turn.outgoing == [Reply(APOLOGY)]
    assert factory.data.machines == []
    assert exploding.conversation() == before
    record = next(r for r in factory.data.inbox.values() if r.update_id == update_id)
    assert record.outcome == "failed"
    assert record.error is not None and "disk on fire" in record.error
    assert [r.message for r in factory.data.outbox[outbox_rows:]] == [Reply(APOLOGY)]


async def test_a_failing_button_press_is_acknowledged_and_apologised_for(
    exploding: Chat, factory: FakeUnitOfWorkFactory
) -> None:
    await exploding.say("/addmachine")
    await exploding.say("Press 3")
    for _ in range(4):
        await exploding.press("Skip")
    before = exploding.conversation()

    turn = await exploding.press("Skip")

    assert turn.outgoing == [CallbackAnswer(f"cb-{turn.applied[0].update_id}"), Reply(APOLOGY)]
    assert factory.data.machines == []
    assert exploding.conversation() == before


async def test_the_chat_carries_on_after_a_failed_update(
    factory: FakeUnitOfWorkFactory, clock: FakeClock, update_ids: Iterator[int]
) -> None:
    chat = Chat(engine_with(ExplodingActions(failures=1), factory, clock), factory, update_ids)
    await chat.say("/addmachine")
    await chat.say("Press 3")
    for _ in range(4):
        await chat.say("/skip")
    failed = await chat.say("Oil weekly")
    assert failed.applied[0].outcome == "failed"

    retried = await chat.say("Oil weekly")

    assert retried.text.startswith("Saved “Press 3” to your library.")
    assert [fields(m) for m in factory.data.machines] == [{**only_nickname(7, "Press 3"), "notes": "Oil weekly"}]
    assert chat.conversations() == []


# -- a nickname taken meanwhile from another chat --------------------------------------------


async def test_a_nickname_taken_from_another_chat_meanwhile_is_asked_again_keeping_the_rest(
    chat: Chat, factory: FakeUnitOfWorkFactory
) -> None:
    other_chat = Chat(chat.engine, factory, chat.update_ids, chat_id=200, user_id=chat.user_id)
    await chat.say("/addmachine")
    await chat.say("Press 3")
    await chat.say("Amada")
    await chat.say("HFE 100")
    await chat.say("/skip")
    await chat.say("Hall B")
    await other_chat.add_machine("press 3", manufacturer="Trumpf")

    turn = await chat.say("Oil weekly")

    assert turn.text.startswith(
        "You already have a machine called “press 3” (Trumpf). Please choose a different nickname.\n\n"
        "Step 1 of 6 · Nickname\n"
    )
    assert [m.manufacturer for m in factory.data.machines] == ["Trumpf"]
    assert chat.conversation().answers.values == {
        "manufacturer": "Amada",
        "model_number": "HFE 100",
        "serial_number": None,
        "location": "Hall B",
        "notes": "Oil weekly",
    }

    done = await chat.say("Press 3 east")
    assert done.text.startswith("Saved “Press 3 east” to your library.")
    assert sorted((m.nickname, m.manufacturer, m.notes) for m in factory.data.machines) == [
        ("Press 3 east", "Amada", "Oil weekly"),
        ("press 3", "Trumpf", None),
    ]
    assert chat.conversations() == []
