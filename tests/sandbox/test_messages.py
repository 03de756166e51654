"""Sending, editing and checking messages through the sandbox with python-telegram-bot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter

from durabot.sandbox import Sandbox, SandboxClient
from tests.sandbox.conftest import CHAT, bot_on


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(f"Button {item}", callback_data=item) for item in data]])


async def test_get_me_describes_the_bot_of_the_token(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot
    assert me.username == "durabot_sandbox_bot"
    assert me.first_name == "durabot sandbox"
    assert me.can_join_groups and not me.can_read_all_group_messages and not me.supports_inline_queries


async def test_a_malformed_token_is_unauthorized(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidToken):
        async with bot_on(sandbox, "not-a-token"):
            pass


async def test_a_message_with_a_keyboard_round_trips_and_is_listed(bot: Bot, user: SandboxClient) -> None:
    sent = await bot.send_message(CHAT, "Pick one", reply_markup=keyboard("a", "b"))
    assert sent.text == "Pick one"
    assert sent.chat.id == CHAT and sent.chat.type == "private"
    assert sent.from_user is not None and sent.from_user.id == 123456
    assert sent.reply_markup == keyboard("a", "b")

    await user.send_text(CHAT, "a")
    second = await bot.send_message(CHAT, "Thanks")
    assert second.message_id == sent.message_id + 2  # ids are shared by the user's and the bot's messages

    listed = await user.messages(CHAT)
    assert [(m["message_id"], m["from_bot"], m["text"]) for m in listed] == [
        (sent.message_id, True, "Pick one"),
        (sent.message_id + 1, False, "a"),
        (second.message_id, True, "Thanks"),
    ]
    assert listed[0]["reply_markup"] == keyboard("a", "b").to_dict()
    assert listed[0]["edited"] is False


async def test_negative_chat_ids_are_groups(bot: Bot) -> None:
    sent = await bot.send_message(-100, "Hello, group")
    assert sent.chat.type == "group"


@pytest.mark.parametrize(
    ("text", "markup", "description"),
    [
        ("x" * 4097, None, "Message is too long"),
        ("   \n ", None, "Message text is empty"),
        ("Pick", keyboard("x" * 65), "Button_data_invalid"),
        ("Pick", keyboard("é" * 33), "Button_data_invalid"),  # 66 bytes in 33 characters
    ],
)
async def test_telegram_limits_are_bad_requests(
    bot: Bot, text: str, markup: InlineKeyboardMarkup | None, description: str
) -> None:
    with pytest.raises(BadRequest, match=description):
        await bot.send_message(CHAT, text, reply_markup=markup)


async def test_limits_are_exact(bot: Bot) -> None:
    assert (await bot.send_message(CHAT, "x" * 4096)).text == "x" * 4096
    assert (await bot.send_message(CHAT, "Pick", reply_markup=keyboard("x" * 64))).reply_markup == keyboard("x" * 64)


async def test_html_text_is_stored_without_tags(bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "<b>Bold</b> &amp; plain", parse_mode="HTML")
    assert sent.text == "Bold & plain"
    with pytest.raises(BadRequest, match="parse entities"):
        await bot.send_message(CHAT, "<blink>no</blink>", parse_mode="HTML")


async def test_a_chat_that_blocked_the_bot_is_forbidden(bot: Bot, user: SandboxClient) -> None:
    await user.block(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "Hello?")
    assert (await bot.send_message(CHAT + 1, "Other chats still work")).text == "Other chats still work"
    await user.block(CHAT, blocked=False)
    assert (await bot.send_message(CHAT, "Unblocked")).text == "Unblocked"


async def test_a_429_fault_carries_retry_after_and_is_logged(bot: Bot, user: SandboxClient) -> None:
    await user.fail("sendMessage", 429, retry_after=2)
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(CHAT, "Too fast")
    assert raised.value.retry_after == timedelta(seconds=2)

    await bot.send_message(CHAT, "Later")
    calls = await user.calls("sendMessage")
    assert [call["status"] for call in calls] == [429, 200]
    assert calls[0]["params"]["text"] == "Too fast"
    assert calls[1]["at"] > calls[0]["at"]
    assert [m["text"] for m in await user.messages(CHAT)] == ["Later"]


async def test_a_500_fault_is_a_network_error_for_count_calls(bot: Bot, user: SandboxClient) -> None:
    await user.fail("sendmessage", 500, count=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(CHAT, "Hello")
    assert (await bot.send_message(CHAT, "Hello")).text == "Hello"


async def test_cleared_faults_no_longer_strike(bot: Bot, user: SandboxClient) -> None:
    await user.fail("sendMessage", 500)
    await user.block(CHAT)
    await user.clear_faults()
    assert (await bot.send_message(CHAT, "Hello")).text == "Hello"


async def test_edit_text_keeps_history_and_replaces_the_keyboard(bot: Bot, user: SandboxClient) -> None:
    sent = await bot.send_message(CHAT, "Step 1", reply_markup=keyboard("a"))
    edited = await bot.edit_message_text("Step 2", CHAT, sent.message_id, reply_markup=keyboard("b"))
    assert not isinstance(edited, bool)
    assert edited.text == "Step 2" and edited.edit_date is not None
    assert edited.reply_markup == keyboard("b")

    [listed] = await user.messages(CHAT)
    assert listed["text"] == "Step 2" and listed["edited"] is True
    assert listed["previous_versions"] == ["Step 1"]

    without_buttons = await bot.edit_message_text("Step 3", CHAT, sent.message_id)
    assert not isinstance(without_buttons, bool) and without_buttons.reply_markup is None


async def test_edit_reply_markup_removes_or_replaces_buttons(bot: Bot, user: SandboxClient) -> None:
    sent = await bot.send_message(CHAT, "Choose", reply_markup=keyboard("a"))
    await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard("b"))
    assert (await user.messages(CHAT))[0]["reply_markup"] == keyboard("b").to_dict()
    await bot.edit_message_reply_markup(CHAT, sent.message_id)
    [listed] = await user.messages(CHAT)
    assert listed["reply_markup"] is None and listed["text"] == "Choose"


async def test_edits_that_change_nothing_or_miss_the_message_are_refused(bot: Bot, user: SandboxClient) -> None:
    sent = await bot.send_message(CHAT, "Same", reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("Same", CHAT, sent.message_id, reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("New", CHAT, 999)
    typed = await user.send_text(CHAT, "mine")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("New", CHAT, typed["update"]["message"]["message_id"])


async def test_a_pressed_button_is_answered_once(bot: Bot, user: SandboxClient) -> None:
    sent = await bot.send_message(CHAT, "Choose", reply_markup=keyboard("yes"))
    pressed = await user.press_button(CHAT, sent.message_id, "yes")
    query = pressed["update"]["callback_query"]
    assert query["data"] == "yes"
    assert query["from"]["id"] == CHAT
    assert query["message"]["message_id"] == sent.message_id
    assert query["message"]["reply_markup"] == keyboard("yes").to_dict()

    assert await bot.answer_callback_query(query["id"], text="Saved")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query["id"], text="Again")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("12345")
    [answer] = await user.callback_answers()
    assert answer["callback_query_id"] == query["id"]
    assert answer["text"] == "Saved" and answer["message_id"] == sent.message_id


async def test_commands_are_kept_per_scope(bot: Bot) -> None:
    assert await bot.get_my_commands() == ()
    await bot.set_my_commands([("addmachine", "Add a machine"), ("library", "Your machines")])
    commands = await bot.get_my_commands()
    assert [(c.command, c.description) for c in commands] == [
        ("addmachine", "Add a machine"),
        ("library", "Your machines"),
    ]
    assert await bot.get_my_commands(language_code="de") == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Add-Machine", "Bad name")])
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("x" * 33, "Too long")])
