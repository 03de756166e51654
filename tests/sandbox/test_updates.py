"""Receiving updates with getUpdates: offsets confirm, long polls wake, redelivered updates come back."""

from __future__ import annotations

import asyncio
import time

import pytest
from telegram import Bot
from telegram.error import Conflict

from durabot.sandbox import Sandbox, SandboxApiError, SandboxClient
from tests.sandbox.conftest import CHAT, bot_on


async def inject_texts(user: SandboxClient, *texts: str) -> list[int]:
    return [(await user.send_text(CHAT, text))["update_id"] for text in texts]


async def test_updates_arrive_in_order_with_consecutive_ids(bot: Bot, user: SandboxClient) -> None:
    ids = await inject_texts(user, "one", "two", "three")
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == ids
    assert [u.message.text for u in updates if u.message] == ["one", "two", "three"]
    assert (await bot.get_updates()) == updates  # nothing is confirmed without an offset


async def test_an_offset_confirms_every_update_below_it_for_good(bot: Bot, user: SandboxClient) -> None:
    first, second, third = await inject_texts(user, "one", "two", "three")
    assert [u.update_id for u in await bot.get_updates(offset=second)] == [second, third]
    assert [u["update_id"] for u in await user.pending_updates()] == [second, third]
    assert [u.update_id for u in await bot.get_updates(offset=first)] == [second, third]
    assert await bot.get_updates(offset=third + 1) == ()
    assert await user.pending_updates() == []


async def test_limit_caps_the_batch(bot: Bot, user: SandboxClient) -> None:
    ids = await inject_texts(user, "a", "b", "c")
    assert [u.update_id for u in await bot.get_updates(limit=2)] == ids[:2]
    assert [u.update_id for u in await bot.get_updates(offset=ids[1] + 1, limit=2)] == ids[2:]


async def test_a_negative_offset_keeps_only_the_newest_updates(bot: Bot, user: SandboxClient) -> None:
    ids = await inject_texts(user, "a", "b", "c")
    assert [u.update_id for u in await bot.get_updates(offset=-1)] == ids[2:]
    assert [u["update_id"] for u in await user.pending_updates()] == ids[2:]


async def test_a_long_poll_wakes_as_soon_as_an_update_arrives(bot: Bot, user: SandboxClient) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.3)
    assert not poll.done()
    [update_id] = await inject_texts(user, "wake up")
    updates = await asyncio.wait_for(poll, 5)
    assert [u.update_id for u in updates] == [update_id]
    assert time.monotonic() - started < 3


async def test_a_long_poll_without_updates_ends_after_its_timeout(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3


async def test_a_newer_poll_ends_the_older_one_with_a_conflict(bot: Bot, sandbox: Sandbox) -> None:
    older = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.sleep(0.3)
    async with bot_on(sandbox) as second_instance:
        newer = asyncio.create_task(second_instance.get_updates(timeout=1))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await asyncio.wait_for(older, 5)
        assert await newer == ()


async def test_a_delay_fault_holds_get_updates(bot: Bot, user: SandboxClient) -> None:
    await user.delay("getUpdates", 0.6)
    started = time.monotonic()
    assert await bot.get_updates() == ()
    assert time.monotonic() - started >= 0.6
    started = time.monotonic()
    await bot.get_updates()
    assert time.monotonic() - started < 0.5


async def test_a_redelivered_update_comes_back_with_its_id_even_after_confirmation(
    bot: Bot, user: SandboxClient
) -> None:
    first, second = await inject_texts(user, "once", "twice")
    await bot.get_updates()
    assert await bot.get_updates(offset=second + 1) == ()

    again = await user.redeliver(first)
    assert again["update_id"] == first
    [update] = await bot.get_updates(offset=second + 1)
    assert update.update_id == first and update.message is not None and update.message.text == "once"
    assert await bot.get_updates(offset=second + 1) == ()


async def test_redelivering_an_unknown_update_is_refused(user: SandboxClient) -> None:
    with pytest.raises(SandboxApiError, match="404"):
        await user.redeliver(1)


async def test_allowed_updates_filters_kinds(bot: Bot, user: SandboxClient) -> None:
    sent = await bot.send_message(CHAT, "Choose", reply_markup=None)
    await user.send_text(CHAT, "text")
    pressed = await user.press_button(CHAT, sent.message_id, "data")
    updates = await bot.get_updates(allowed_updates=["callback_query"])
    assert [u.update_id for u in updates] == [pressed["update_id"]]


async def test_other_kinds_of_update_have_telegram_shapes(bot: Bot, user: SandboxClient) -> None:
    await user.send_text(CHAT, "/start now", first_name="Ada", username="ada")
    await user.send_sticker(CHAT)
    await user.send_raw({"edited_message": {"message_id": 1, "date": 0, "chat": {"id": CHAT, "type": "private"}}})
    command, sticker, raw = await bot.get_updates()
    assert command.message is not None and command.message.from_user is not None
    assert command.message.from_user.first_name == "Ada" and command.message.from_user.username == "ada"
    assert command.message.parse_entities() and command.message.text == "/start now"
    assert [(e.type, e.offset, e.length) for e in command.message.entities] == [("bot_command", 0, 6)]
    assert sticker.message is not None and sticker.message.sticker is not None
    assert raw.edited_message is not None and raw.edited_message.message_id == 1


async def test_reset_forgets_updates_and_messages_but_not_the_id_counter(bot: Bot, user: SandboxClient) -> None:
    [before] = await inject_texts(user, "old")
    await bot.send_message(CHAT, "reply")
    await user.reset()
    assert await user.pending_updates() == []
    assert await user.messages(CHAT) == []
    [after] = await inject_texts(user, "new")
    assert after > before


async def test_stopping_the_sandbox_ends_a_long_poll_promptly() -> None:
    sandbox = Sandbox()
    await sandbox.start()
    async with bot_on(sandbox) as client:
        poll = asyncio.create_task(client.get_updates(timeout=30))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await sandbox.stop()
        assert await asyncio.wait_for(poll, 5) == ()
        assert time.monotonic() - started < 2
