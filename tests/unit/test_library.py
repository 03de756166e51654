"""The /library command: the user's own machines, newest first, ten to a page with next/previous buttons."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durabot.clock import FakeClock
from durabot.domain.machines import MachineDraft
from durabot.replies import CallbackAnswer
from durabot.testing import FakeUnitOfWorkFactory
from tests.unit.driver import Chat, Turn

NEXT = "Next ›"
PREVIOUS = "‹ Previous"


async def seed(factory: FakeUnitOfWorkFactory, clock: FakeClock, user_id: int, count: int, prefix: str = "M") -> None:
    """Give ``user_id`` machines "M01" … in the order added, a minute apart."""
    async with factory() as uow:
        for number in range(1, count + 1):
            await uow.machines.add(MachineDraft(user_id, f"{prefix}{number:02d}"))
            clock.advance(timedelta(minutes=1))
        await uow.commit()


def listed(turn: Turn) -> list[str]:
    """The numbered lines of a library page."""
    return turn.text.split(":\n", 1)[1].split("\n")


def numbered(first: int, nicknames: list[str]) -> list[str]:
    return [f"{first + index}. {nickname}" for index, nickname in enumerate(nicknames)]


def nicknames(start: int, stop: int) -> list[str]:
    """"M{start}" down to "M{stop}", newest first."""
    return [f"M{number:02d}" for number in range(start, stop - 1, -1)]


async def test_an_empty_library_says_how_to_add_a_machine(chat: Chat) -> None:
    turn = await chat.say("/library")
    assert turn.texts == ["Your library is empty. Send /addmachine to add your first machine."]
    assert turn.buttons == {}


async def test_one_machine_is_listed_on_one_line_without_buttons(chat: Chat) -> None:
    await chat.add_machine(
        "Press 3", manufacturer="Amada", model_number="HFE 100", serial_number="4411", location="Hall B"
    )
    turn = await chat.say("/library")
    assert turn.texts == ["Your library — 1 machine, newest first:\n1. Press 3 — Amada HFE 100, S/N 4411 · Hall B"]
    assert turn.buttons == {}


async def test_machines_added_through_the_flow_are_listed_newest_first(chat: Chat) -> None:
    await chat.add_machine("Lathe 1")
    await chat.add_machine("Mill 2", manufacturer="Haas")
    await chat.add_machine("Press 3", location="Hall B")
    turn = await chat.say("/library")
    assert turn.text.startswith("Your library — 3 machines, newest first:\n")
    assert listed(turn) == ["1. Press 3 · Hall B", "2. Mill 2 — Haas", "3. Lathe 1"]


@pytest.fixture
async def library_of_25(chat: Chat, factory: FakeUnitOfWorkFactory, clock: FakeClock) -> Chat:
    await seed(factory, clock, chat.user_id, 25)
    return chat


async def test_page_1_shows_the_10_newest_with_only_a_next_button(library_of_25: Chat) -> None:
    turn = await library_of_25.say("/library")
    assert turn.text.startswith("Your library — 25 machines, newest first (page 1 of 3):\n")
    assert listed(turn) == numbered(1, nicknames(25, 16))
    assert turn.buttons == {NEXT: "lib:2"}


async def test_page_2_has_both_buttons(library_of_25: Chat) -> None:
    turn = await library_of_25.say("/library 2")
    assert turn.text.startswith("Your library — 25 machines, newest first (page 2 of 3):\n")
    assert listed(turn) == numbered(11, nicknames(15, 6))
    assert [[b.label for b in row] for row in turn.button_rows] == [[PREVIOUS, NEXT]]
    assert turn.buttons == {PREVIOUS: "lib:1", NEXT: "lib:3"}


async def test_page_3_shows_the_last_5_with_only_a_previous_button(library_of_25: Chat) -> None:
    turn = await library_of_25.say("/library 3")
    assert turn.text.startswith("Your library — 25 machines, newest first (page 3 of 3):\n")
    assert listed(turn) == numbered(21, nicknames(5, 1))
    assert turn.buttons == {PREVIOUS: "lib:2"}


async def test_the_buttons_page_forwards_and_back(library_of_25: Chat) -> None:
    chat = library_of_25
    await chat.say("/library")

    page_2 = await chat.press(NEXT)
    assert page_2.outgoing[0] == CallbackAnswer(f"cb-{page_2.applied[0].update_id}")
    assert listed(page_2) == numbered(11, nicknames(15, 6))

    page_3 = await chat.press(NEXT)
    assert listed(page_3) == numbered(21, nicknames(5, 1))
    assert NEXT not in page_3.buttons

    back_to_2 = await chat.press(PREVIOUS)
    assert listed(back_to_2) == listed(page_2)
    back_to_1 = await chat.press(PREVIOUS)
    assert listed(back_to_1) == numbered(1, nicknames(25, 16))
    assert back_to_1.buttons == {NEXT: "lib:2"}


async def test_library_buttons_never_expire(library_of_25: Chat) -> None:
    chat = library_of_25
    first = await chat.say("/library")
    await chat.say("/addmachine")
    await chat.say("/cancel")
    turn = await chat.press(NEXT, turn=first)
    assert turn.callback_answers[0].text is None
    assert listed(turn) == numbered(11, nicknames(15, 6))


@pytest.mark.parametrize(("argument", "page"), [("", 1), ("1", 1), ("0", 1), ("abc", 1), ("-2", 1), ("99", 3)])
async def test_the_page_argument_falls_back_to_a_page_that_exists(library_of_25: Chat, argument: str, page: int) -> None:
    turn = await library_of_25.say(f"/library {argument}".strip())
    assert f"(page {page} of 3)" in turn.text


async def test_a_page_button_past_the_end_shows_the_last_page(library_of_25: Chat) -> None:
    turn = await library_of_25.press_data("lib:7")
    assert "(page 3 of 3)" in turn.text


@pytest.mark.parametrize("argument", ["²", "³"])
async def test_a_non_ascii_digit_argument_shows_page_1_instead_of_failing(
    library_of_25: Chat, factory: FakeUnitOfWorkFactory, argument: str
) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` raises: a typed ``/library ²`` must not fail the update."""
    turn = await library_of_25.say(f"/library {argument}")
    assert [applied.outcome for applied in turn.applied] == ["applied"]
    assert "(page 1 of 3)" in turn.text


async def test_a_forged_page_button_with_a_non_ascii_digit_has_expired(
    library_of_25: Chat, factory: FakeUnitOfWorkFactory
) -> None:
    """Button data "lib:²" is not understood, so it must be answered as expired, not fail the update."""
    turn = await library_of_25.press_data("lib:²")
    assert [applied.outcome for applied in turn.applied] == ["applied"]
    assert turn.outgoing == [CallbackAnswer(f"cb-{turn.applied[0].update_id}", "This button has expired.")]


async def test_only_the_users_own_machines_are_listed(
    chat: Chat, factory: FakeUnitOfWorkFactory, clock: FakeClock
) -> None:
    await seed(factory, clock, chat.user_id, 3, prefix="Mine")
    await seed(factory, clock, 8, 12, prefix="Theirs")
    turn = await chat.say("/library")
    assert turn.text.startswith("Your library — 3 machines, newest first:\n")
    assert listed(turn) == ["1. Mine03", "2. Mine02", "3. Mine01"]
    assert turn.buttons == {}

    theirs = Chat(chat.engine, factory, chat.update_ids, chat_id=300, user_id=8)
    other_page_2 = await theirs.say("/library 2")
    assert listed(other_page_2) == ["11. Theirs02", "12. Theirs01"]


async def test_the_same_user_sees_the_same_library_in_any_chat(
    chat: Chat, factory: FakeUnitOfWorkFactory, clock: FakeClock
) -> None:
    await seed(factory, clock, chat.user_id, 2)
    elsewhere = Chat(chat.engine, factory, chat.update_ids, chat_id=999, user_id=chat.user_id)
    assert listed(await elsewhere.say("/library")) == ["1. M02", "2. M01"]


async def test_library_during_the_flow_lists_then_reminds_and_keeps_the_conversation(
    library_of_25: Chat,
) -> None:
    chat = library_of_25
    await chat.say("/addmachine")
    question = await chat.say("Press 3")
    before = chat.conversation()

    turn = await chat.say("/library")

    assert len(turn.replies) == 2
    assert turn.texts[0].startswith("Your library — 25 machines")
    assert turn.texts[1] == f"You are still adding a machine to your library; here is where you were:\n\n{question.text}"
    assert chat.conversation() == before

    library_buttons = {button.label: button.data for row in turn.replies[0].buttons for button in row}
    paged = await chat.press_data(library_buttons[NEXT])
    assert listed(paged) == numbered(11, nicknames(15, 6))
    assert chat.conversation() == before
    assert (await chat.say("Amada")).text.startswith("Step 3 of 6 · Model number")
