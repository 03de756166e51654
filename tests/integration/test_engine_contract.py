"""The engine's contract, run on real SQLite and real PostgreSQL: the add-machine flow end to end."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Chat, Harness

LONG = "x" * 1001


async def add_machine(chat: Chat, *answers: str) -> list[str]:
    await chat.say("/addmachine")
    replies: list[str] = []
    for answer in answers:
        replies = await chat.say(answer)
    return replies


async def test_full_flow_saves_exactly_what_was_typed(chat: Chat, harness: Harness) -> None:
    replies = await add_machine(chat, "Press 3", "Haas", "VF-2", "SN-0042", "Hall B, line 2", "Oil weekly")
    assert "Saved “Press 3” to your library." in replies[-1]
    [machine] = await harness.machines(chat.user_id)
    assert (machine.nickname, machine.manufacturer, machine.model_number) == ("Press 3", "Haas", "VF-2")
    assert (machine.serial_number, machine.location, machine.notes) == ("SN-0042", "Hall B, line 2", "Oil weekly")
    assert await harness.conversations() == []
    outbox = await harness.outbox_texts(chat.chat_id)
    assert [text.split(" · ")[0] for text in outbox[:6]] == [f"Step {n} of 6" for n in range(1, 7)]
    assert outbox[-1] == replies[-1]


async def test_skip_everything_saves_only_the_nickname(chat: Chat, harness: Harness) -> None:
    replies = await add_machine(chat, "Compressor", "/skip", "/skip", "/skip", "/skip", "/skip")
    assert "Saved “Compressor”" in replies[-1]
    [machine] = await harness.machines()
    assert machine.nickname == "Compressor"
    assert [machine.manufacturer, machine.model_number, machine.serial_number, machine.location, machine.notes] == [
        None
    ] * 5


async def test_buttons_skip_and_cancel(chat: Chat, harness: Harness) -> None:
    await add_machine(chat, "Lathe")
    replies = await chat.press("Skip")
    assert replies[0].startswith("Step 3 of 6")
    replies = await chat.press("Cancel")
    assert replies[0].startswith("Cancelled")
    assert await harness.conversations() == []
    assert await harness.machines() == []


async def test_cancel_clears_the_conversation_and_saves_nothing(chat: Chat, harness: Harness) -> None:
    replies = await add_machine(chat, "Lathe", "Emco", "/cancel")
    assert replies == ["Cancelled — you are no longer adding a machine to your library. Nothing from it was saved."]
    assert await harness.conversations() == []
    assert await harness.machines() == []
    assert (await chat.say("/addmachine"))[0].startswith("Step 1 of 6")


@pytest.mark.parametrize("second", ["Press 3", "press 3", "PRESS  3 "])
async def test_duplicate_nickname_names_the_existing_machine_and_asks_again(
    chat: Chat, harness: Harness, second: str
) -> None:
    await add_machine(chat, "Press 3", "Haas", "VF-2", "/skip", "/skip", "/skip")
    await chat.say("/addmachine")
    replies = await chat.say(second)
    assert replies[0].startswith("You already have a machine called “Press 3” (Haas VF-2).")
    assert "Step 1 of 6 · Nickname" in replies[0]
    replies = await chat.say("Press 4")
    assert replies[0].startswith("Step 2 of 6")
    assert len(await harness.machines()) == 1


async def test_another_user_may_use_the_same_nickname(harness: Harness) -> None:
    alice, bob = Chat(harness, 1, 11), Chat(harness, 2, 22)
    for person in (alice, bob):
        await add_machine(person, "Press 3", "/skip", "/skip", "/skip", "/skip", "/skip")
    assert len(await harness.machines()) == 2


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        ("text", "", "That answer was empty."),
        ("text", "   \n ", "That answer was empty."),
        ("text", LONG, "That answer is 1,001 characters long; answers can be at most 1,000."),
        ("content", "photo", "I can't use a photo here — please type your answer as text."),
        ("content", "sticker", "I can't use a sticker here — please type your answer as text."),
        ("text", "/frobnicate", "Sorry, /frobnicate is not a command I know."),
    ],
)
async def test_bad_input_gets_a_message_and_the_same_question(
    chat: Chat, harness: Harness, kind: str, payload: str, expected: str
) -> None:
    await add_machine(chat, "Mill", "Fanuc")
    before = await harness.conversations()
    replies = await (chat.say(payload) if kind == "text" else chat.content(payload))
    assert replies[0].startswith(expected)
    assert "Step 3 of 6 · Model number" in replies[0]
    after = await harness.conversations()
    assert [row.state_data for row in after] == [row.state_data for row in before]
    assert (await chat.say("M-1"))[0].startswith("Step 4 of 6")


async def test_resume_after_restart_keeps_answers_and_welcomes_back(
    test_db: object, chat: Chat, harness: Harness
) -> None:
    await add_machine(chat, "Boiler 1", "Viessmann")
    await harness.close()
    del harness  # drop the engine and everything it holds

    reborn = Harness(chat.harness.test_db, chat.harness.clock)
    try:
        chat.harness = reborn
        replies = await chat.say("/addmachine")
        assert replies[0].startswith("Welcome back! You were adding a machine to your library. So far:")
        assert "• Nickname: Boiler 1\n• Manufacturer: Viessmann" in replies[0]
        assert "Step 3 of 6 · Model number" in replies[0]
        replies = await add_machine_rest(chat, "V200", "/skip", "Basement", "/skip")
        assert "Saved “Boiler 1”" in replies[-1]
        [machine] = await reborn.machines()
        assert (machine.manufacturer, machine.model_number, machine.location) == ("Viessmann", "V200", "Basement")
    finally:
        await reborn.close()


async def add_machine_rest(chat: Chat, *answers: str) -> list[str]:
    replies: list[str] = []
    for answer in answers:
        replies = await chat.say(answer)
    return replies


async def test_the_same_update_twice_has_one_effect_and_one_set_of_messages(chat: Chat, harness: Harness) -> None:
    from durabot.engine.events import Event

    await add_machine(chat, "Saw", "/skip", "/skip", "/skip", "/skip")
    last = Event.message(chat.next_id(), chat.chat_id, chat.user_id, "final note")
    first = await harness.engine.handle(last)
    again = await harness.engine.handle(last)
    assert [a.update_id for a in first] == [last.update_id]
    assert again == []
    assert len(await harness.machines()) == 1
    texts = await harness.outbox_texts(chat.chat_id)
    assert sum("Saved “Saw”" in text for text in texts) == 1


async def test_library_lists_newest_first_in_pages_of_ten(chat: Chat, harness: Harness) -> None:
    assert (await chat.say("/library"))[0] == "Your library is empty. Send /addmachine to add your first machine."
    for number in range(1, 13):
        harness.clock.advance(minutes=1)
        await add_machine(chat, f"Pump {number}", "/skip", "/skip", "/skip", "/skip", "/skip")
    page_one = (await chat.say("/library"))[0]
    assert page_one.startswith("Your library — 12 machines, newest first (page 1 of 2):\n1. Pump 12\n2. Pump 11")
    assert "Pump 2" not in page_one.split("\n")[-1] or page_one.endswith("10. Pump 3")
    page_two = (await chat.press("Next ›"))[0]
    assert page_two.endswith("11. Pump 2\n12. Pump 1")
    assert (await chat.press("‹ Previous"))[0] == page_one
