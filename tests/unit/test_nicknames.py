"""Nicknames: what looks the same is the same nickname, and whatever is accepted fits the database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durabot.domain import machines
from durabot.domain.machines import MachineDraft, clean_nickname, nickname_key, save_machine
from durabot.flows.add_machine import parse_nickname
from durabot.flows.model import InvalidAnswer
from durabot.storage.tables import NICKNAME_KEY_LENGTH
from durabot.testing import FakeUnitOfWorkFactory
from tests.unit.driver import Chat

INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c",  # zero-width non-joiner
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # byte-order mark / zero-width no-break space
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u202a",  # left-to-right embedding
    "\u202b",  # right-to-left embedding
    "\u202c",  # pop directional formatting
    "\u202d",  # left-to-right override
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u2067",  # right-to-left isolate
    "\u2068",  # first strong isolate
    "\u2069",  # pop directional isolate
    "\u061c",  # Arabic letter mark
]


@pytest.mark.parametrize("invisible", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_characters_are_dropped(invisible: str) -> None:
    assert clean_nickname(f"{invisible}Press{invisible}3{invisible}") == "Press3"
    assert nickname_key(f"Press{invisible}3") == nickname_key("PRESS3")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Ｐｒｅｓｓ　３", "Press 3"),  # full-width letters, digits and space
        ("ﬁller", "filler"),  # the "fi" ligature
        ("Press ①", "Press 1"),
        ("Cafe\u0301", "Café"),  # a combining accent is composed
        ("  Press \t\n 3  ", "Press 3"),
    ],
)
def test_nicknames_are_nfkc_normalised_and_their_spaces_folded(typed: str, stored: str) -> None:
    assert clean_nickname(typed) == stored


def test_the_key_ignores_case_including_sharp_s_and_composed_forms() -> None:
    assert nickname_key("STRASSE") == nickname_key("straße")
    assert nickname_key("ΐ") == nickname_key("\u03b9\u0308\u0301")


@given(st.text(max_size=120))
def test_cleaning_twice_changes_nothing(raw: str) -> None:
    once = clean_nickname(raw)
    assert clean_nickname(once) == once
    assert nickname_key(once) == nickname_key(raw)


@given(st.text(max_size=150))
def test_every_accepted_nickname_and_its_key_fit_their_columns(raw: str) -> None:
    try:
        nickname = parse_nickname(raw)
    except InvalidAnswer:
        return
    assert 2 <= len(nickname) <= 100
    assert len(nickname_key(nickname)) <= NICKNAME_KEY_LENGTH
    assert not set(nickname) & set(INVISIBLE)


def test_the_key_limit_is_the_size_of_the_key_column() -> None:
    assert machines.NICKNAME_KEY_MAX_LENGTH == NICKNAME_KEY_LENGTH


def test_the_length_rule_applies_to_the_cleaned_nickname() -> None:
    assert parse_nickname("\u200b" * 50 + "P3") == "P3"
    with pytest.raises(InvalidAnswer, match="yours has 1"):
        parse_nickname("P\u200b\u200b\u200b")
    with pytest.raises(InvalidAnswer, match="yours has 102"):
        parse_nickname("Ｐ" * 102)


def test_one_hundred_sharp_s_are_accepted_and_fold_to_two_hundred_characters() -> None:
    nickname = parse_nickname("ß" * 100)
    assert nickname == "ß" * 100
    assert nickname_key(nickname) == "ss" * 100


def test_a_nickname_whose_key_is_longer_than_its_column_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machines, "NICKNAME_KEY_MAX_LENGTH", 150)
    with pytest.raises(InvalidAnswer, match="too long to compare"):
        parse_nickname("ß" * 100)


async def test_a_nickname_that_differs_only_by_an_invisible_character_is_taken(chat: Chat) -> None:
    await chat.add_machine("Press3")
    await chat.say("/addmachine")
    turn = await chat.say("Press\u200b3")
    assert turn.text.startswith("You already have a machine called “Press3”. Please choose a different nickname.")


async def test_a_nickname_is_saved_without_its_invisible_characters(
    chat: Chat, factory: FakeUnitOfWorkFactory
) -> None:
    await chat.add_machine("\u202ePress\u200d 3\ufeff")
    [machine] = factory.data.machines
    assert machine.nickname == "Press 3"


async def test_a_draft_from_before_normalisation_is_cleaned_when_saved(factory: FakeUnitOfWorkFactory) -> None:
    async with factory() as uow:
        await save_machine(uow.machines, MachineDraft(7, "Press3"))
        with pytest.raises(machines.DuplicateNicknameError):
            await save_machine(uow.machines, MachineDraft(7, "Press\u200b3"))
        saved = await save_machine(uow.machines, MachineDraft(7, "Ｐｒｅｓｓ 4"))
    assert saved.nickname == "Press 4"
