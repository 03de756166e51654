"""Translation between Telegram's wire format and engine events, and long-message splitting.

Strict validation of malformed updates has its own file, ``test_update_validation.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from durabot.bootstrap import build_registry
from durabot.engine.events import Event, EventKind, IgnoredUpdate
from durabot.transport.telegram import MAX_MESSAGE_LENGTH, bot_commands, bot_id_of, split_text
from durabot.transport.updates import event_from_update

USER = {"id": 77, "is_bot": False, "first_name": "Ana"}
CHAT = {"id": 77, "type": "private", "first_name": "Ana"}


def message(update_id: int, **fields: Any) -> dict[str, Any]:
    return {"update_id": update_id, "message": {"message_id": 5, "date": 1_700_000_000, "chat": CHAT, "from": USER, **fields}}


def test_a_text_message_becomes_a_text_event() -> None:
    assert event_from_update(message(10, text="Press 3")) == Event.message(10, 77, 77, "Press 3")


def test_a_command_keeps_its_text() -> None:
    raw = message(11, text="/addmachine", entities=[{"type": "bot_command", "offset": 0, "length": 11}])
    assert event_from_update(raw) == Event.message(11, 77, 77, "/addmachine")


@pytest.mark.parametrize(
    ("fields", "content"),
    [
        ({"photo": [{"file_id": "p", "file_unique_id": "u", "width": 9, "height": 9}]}, "photo"),
        (
            {
                "sticker": {
                    "file_id": "s", "file_unique_id": "u", "width": 9, "height": 9,
                    "is_animated": False, "is_video": False, "type": "regular",
                }
            },
            "sticker",
        ),
        ({"voice": {"file_id": "v", "file_unique_id": "u", "duration": 2}}, "voice"),
        ({"location": {"latitude": 1.0, "longitude": 2.0}}, "location"),
        ({}, "message"),
    ],
)
def test_other_content_becomes_a_content_event(fields: dict[str, Any], content: str) -> None:
    event = event_from_update(message(12, **fields))
    file_id = "p" if content == "photo" else None
    assert event == Event(12, 77, 77, EventKind.CONTENT, content_type=content, file_id=file_id)


def test_a_photo_keeps_its_largest_sizes_id_and_its_caption() -> None:
    sizes = [{"file_id": f"p{n}", "file_unique_id": f"u{n}", "width": w, "height": w} for n, w in enumerate((90, 320, 1280))]
    event = event_from_update(message(14, photo=sizes, caption="/addmachine"))
    assert event == Event.photo(14, 77, 77, "p2", caption="/addmachine")


def test_a_photo_without_a_usable_id_is_ignored_with_its_reason() -> None:
    event = event_from_update(message(15, photo=[{"file_unique_id": "u", "width": 9, "height": 9}]))
    assert isinstance(event, IgnoredUpdate) and "photo" in event.reason


def test_a_button_press_becomes_a_callback_event() -> None:
    raw = {
        "update_id": 13,
        "callback_query": {
            "id": "cb-1",
            "from": USER,
            "chat_instance": "ci",
            "data": "lib:2",
            "message": {"message_id": 9, "date": 1_700_000_000, "chat": CHAT, "text": "Your library"},
        },
    }
    assert event_from_update(raw) == Event.button(13, 77, 77, "lib:2", "cb-1")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"update_id": 14, "edited_message": message(0, text="x")["message"]}, "not acted on: edited_message"),
        ({"update_id": 15, "my_chat_member": {"chat": CHAT}}, "not acted on: my_chat_member"),
        (
            {"update_id": 16, "message": {"message_id": "not a number", "chat": "nonsense"}},
            "malformed message.chat: not an object",
        ),
        (
            {"update_id": 17, "callback_query": {"id": "q", "from": USER, "chat_instance": "c", "inline_message_id": "i"}},
            "callback_query without message",
        ),
        ({"update_id": 18}, "no content"),
        ({"update_id": 19, "\u0000\ud800 secret": 1}, "not acted on: unknown kind"),
    ],
)
def test_updates_the_bot_does_not_act_on_are_ignored_with_their_reason(raw: dict[str, Any], reason: str) -> None:
    item = event_from_update(raw)
    assert isinstance(item, IgnoredUpdate)
    assert (item.update_id, item.reason) == (raw["update_id"], reason)


def test_the_receiving_bot_is_named_in_what_comes_out() -> None:
    assert event_from_update(message(20, text="hi"), bot_id=1000001) == Event(
        20, 77, 77, EventKind.TEXT, text="hi", bot_id=1000001
    )
    assert event_from_update({"update_id": 21}, bot_id=5) == IgnoredUpdate(21, "no content", bot_id=5)


def test_short_text_is_not_split() -> None:
    assert split_text("hello") == ["hello"]


def test_long_text_is_split_at_line_breaks() -> None:
    lines = [f"{n:04d} " + "x" * 95 for n in range(100)]  # 100 lines of 100 characters
    pieces = split_text("\n".join(lines))
    assert all(len(piece) <= MAX_MESSAGE_LENGTH for piece in pieces)
    assert "\n".join(pieces) == "\n".join(lines)
    assert all(piece.split("\n")[0][:4].isdigit() for piece in pieces), "pieces start at a line start"


@given(st.text(alphabet=st.sampled_from("ab \n"), max_size=20_000))
def test_splitting_loses_only_the_separator_it_cut_at(text: str) -> None:
    pieces = split_text(text, limit=100)
    assert all(len(piece) <= 100 for piece in pieces)
    assert len("".join(pieces)) >= len(text) - len(pieces) + 1


def test_the_command_menu_lists_every_command() -> None:
    names = [command.command for command in bot_commands(build_registry())]
    assert names == [
        "addmachine",
        "intake_start",
        "intake_resume",
        "intake_status",
        "intake_cancel",
        "library",
        "export_my_data",
        "delete_my_data",
        "skip",
        "back",
        "cancel",
        "help",
    ]


@pytest.mark.parametrize(
    ("token", "bot_id"), [("1000001:sandbox", 1000001), ("123:ABC-def", 123), ("nonsense", 0), ("١٢:x", 0)]
)
def test_the_bot_id_is_the_number_before_the_colon_of_the_token(token: str, bot_id: int) -> None:
    assert bot_id_of(token) == bot_id
