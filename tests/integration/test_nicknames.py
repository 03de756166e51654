"""Nicknames on SQLite and PostgreSQL: normalised before the clash check and the save; folded keys fit."""

from __future__ import annotations

from durabot.domain.machines import DuplicateNicknameError, MachineDraft, save_machine
from tests.integration.conftest import Chat, Harness


async def add_machine(chat: Chat, nickname: str) -> list[str]:
    await chat.say("/addmachine")
    replies = await chat.say(nickname)
    for _ in range(5):
        if not replies[-1].startswith("Step"):
            break
        replies = await chat.say("/skip")
    return replies


async def test_one_hundred_sharp_s_are_saved(chat: Chat, harness: Harness) -> None:
    replies = await add_machine(chat, "ß" * 100)
    assert replies[0].startswith(f"Saved “{'ß' * 100}” to your library.")
    [machine] = await harness.machines(chat.user_id)
    assert (machine.nickname, machine.nickname_key) == ("ß" * 100, "ss" * 100)
    clash = await add_machine(chat, "ẞ" * 100)  # capital sharp s
    assert clash[0].startswith("You already have a machine called")


async def test_a_nickname_with_an_invisible_character_is_the_same_nickname(chat: Chat, harness: Harness) -> None:
    await add_machine(chat, "Press3")
    replies = await add_machine(chat, "Press\u200b3")
    assert replies[0].startswith("You already have a machine called “Press3”.")
    replies = await chat.say("\u202eＰｒｅｓｓ\u2066 ３")
    assert replies[0].startswith("Step 2 of 6"), "full-width and bidi-wrapped, it is a new nickname: Press 3"
    assert [m.nickname for m in await harness.machines(chat.user_id)] == ["Press3"]
    for _ in range(5):
        await chat.say("/skip")
    assert sorted(m.nickname for m in await harness.machines(chat.user_id)) == ["Press 3", "Press3"]


async def test_the_repository_refuses_a_draft_that_differs_only_invisibly(harness: Harness) -> None:
    async with harness.factory() as uow:
        await save_machine(uow.machines, MachineDraft(5, "Pump 1"))
        try:
            await save_machine(uow.machines, MachineDraft(5, "Pump\u200d 1\ufeff"))
        except DuplicateNicknameError as clash:
            assert clash.existing.nickname == "Pump 1"
        else:
            raise AssertionError("an invisibly different nickname was saved")
        await uow.commit()
    assert [m.nickname for m in await harness.machines(5)] == ["Pump 1"]
