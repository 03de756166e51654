"""Strict validation of raw updates at the edge: every update is an event, ignored with a reason, or unusable."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from durabot.engine.events import Event, EventKind, IgnoredUpdate
from durabot.transport.updates import event_from_update, read_batch, update_id_of

USER: dict[str, Any] = {"id": 77, "is_bot": False, "first_name": "Ana"}
GROUP: dict[str, Any] = {"id": -100123, "type": "supergroup", "title": "Workshop"}
BOT = "DuraBot_bot"


def message(update_id: int = 10, /, **fields: Any) -> dict[str, Any]:
    body = {"message_id": 5, "date": 1_700_000_000, "chat": dict(GROUP), "from": dict(USER), "text": "hello", **fields}
    return {"update_id": update_id, "message": {key: value for key, value in body.items() if value is not ...}}


def button(update_id: int = 11, /, **fields: Any) -> dict[str, Any]:
    body = {
        "id": "cb-1",
        "from": dict(USER),
        "chat_instance": "ci",
        "data": "lib:2",
        "message": {"message_id": 9, "date": 1_700_000_000, "chat": dict(GROUP), "text": "Your library"},
        **fields,
    }
    return {"update_id": update_id, "callback_query": {key: value for key, value in body.items() if value is not ...}}


def reason_of(raw: object, bot_username: str | None = None) -> str:
    item = event_from_update(raw, bot_username=bot_username)
    assert isinstance(item, IgnoredUpdate), item
    return item.reason


@pytest.mark.parametrize(
    "update_id", [True, False, "10", 10.0, -1, 2**63, 2**70, None, [10], {"id": 10}]
)
def test_an_update_id_that_cannot_be_stored_makes_the_update_unusable(update_id: object) -> None:
    raw = message()
    raw["update_id"] = update_id
    assert update_id_of(raw) is None
    assert event_from_update(raw) is None


@pytest.mark.parametrize("raw", [None, [], "update", 10, [message()]])
def test_an_update_that_is_not_an_object_is_unusable(raw: object) -> None:
    assert event_from_update(raw) is None


@pytest.mark.parametrize("update_id", [0, 1, 2**31, 2**63 - 1])
def test_any_int_update_id_a_signed_64_bit_column_holds_is_usable(update_id: int) -> None:
    assert update_id_of(message(update_id)) == update_id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (message(chat={"id": "abc"}), "malformed message.chat.id: not an integer"),
        (message(chat={"id": True}), "malformed message.chat.id: not an integer"),
        (message(chat={"id": 5.0}), "malformed message.chat.id: not an integer"),
        (message(chat={"id": 2**53}), "malformed message.chat.id: out of range"),
        (message(chat={"id": -(2**53)}), "malformed message.chat.id: out of range"),
        (message(chat={"type": "private"}), "message.chat without id"),
        (message(chat=...), "message without chat"),
        (message(chat=None), "malformed message.chat: not an object"),
        (message(**{"from": {"id": False}}), "malformed message.from.id: not an integer"),
        (message(**{"from": ...}), "message without from"),
        (message(text=42), "malformed message.text: not a string"),
        (message(text={"nested": ["x"]}), "malformed message.text: not a string"),
        ({"update_id": 10, "message": "hello"}, "malformed message: not an object"),
        ({"update_id": 10, "message": None}, "malformed message: not an object"),
        (button(**{"from": ...}), "callback_query without from"),
        (button(**{"from": {"id": "77"}}), "malformed callback_query.from.id: not an integer"),
        (button(data=7), "malformed callback_query.data: not a string"),
        (button(id=7), "malformed callback_query.id: not a string"),
        (button(message={"message_id": 9}), "callback_query.message without chat"),
        (button(message=...), "callback_query without message"),
    ],
)
def test_a_malformed_message_or_button_is_ignored_with_a_clear_reason(raw: dict[str, Any], reason: str) -> None:
    assert reason_of(raw) == reason


def test_ids_up_to_telegrams_documented_52_bits_are_accepted() -> None:
    biggest = 2**53 - 1
    item = event_from_update(message(chat={"id": -biggest}, **{"from": {"id": biggest}}))
    assert item == Event(10, -biggest, biggest, EventKind.TEXT, text="hello")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("a\u0000b", "a\ufffdb"), ("lone \ud800 surrogate", "lone \ufffd surrogate"), ("ok ü 🙂", "ok ü 🙂")],
)
def test_text_postgresql_cannot_store_is_replaced_at_the_edge(typed: str, stored: str) -> None:
    item = event_from_update(message(text=typed))
    assert isinstance(item, Event) and item.text == stored
    pressed = event_from_update(button(data=typed, id=typed))
    assert isinstance(pressed, Event) and pressed.text == stored and pressed.callback_id == stored


@pytest.mark.parametrize("text", ["/library@OtherBot", "/library@otherbot 2", "  /addmachine@Other_Bot\nPress 3"])
def test_a_command_addressed_to_another_bot_is_ignored(text: str) -> None:
    item = event_from_update(message(text=text), bot_username=BOT)
    assert item == IgnoredUpdate(10, "command for another bot", chat_id=GROUP["id"], user_id=USER["id"])


@pytest.mark.parametrize("text", ["/library@DuraBot_bot", "/library@durabot_BOT 2", "/library", "mail me@OtherBot"])
def test_a_command_for_this_bot_or_for_no_bot_in_particular_is_kept(text: str) -> None:
    kept = Event(10, GROUP["id"], USER["id"], EventKind.TEXT, text=text)
    assert event_from_update(message(text=text), bot_username=BOT) == kept


def test_while_the_bots_username_is_unknown_no_command_is_taken_for_another_bot() -> None:
    assert isinstance(event_from_update(message(text="/library@OtherBot"), bot_username=None), Event)


def test_a_batch_keeps_every_usable_update_in_order_and_skips_the_rest() -> None:
    good, odd, ignored = message(1), message(3, text=None), message(4, chat=...)
    batch: list[Any] = [good, {"update_id": True, "message": {}}, "junk", odd, ignored, None]
    items, raw = read_batch(batch, bot_id=9, bot_username=BOT)
    assert [(type(item).__name__, item.update_id, item.bot_id) for item in items] == [
        ("Event", 1, 9),
        ("Event", 3, 9),
        ("IgnoredUpdate", 4, 9),
    ]
    assert raw == {1: good, 3: odd, 4: ignored}


def test_the_reason_never_carries_the_updates_content() -> None:
    secret = "jane@example.com"
    for raw in (message(chat={"id": secret}), button(data={"x": secret}), {"update_id": 1, secret: {}}):
        assert secret not in reason_of(raw)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(["update_id", "message", "callback_query", "chat", "from", "id", "text", "data"])


def mutate(raw: dict[str, Any], path: list[str], value: object) -> dict[str, Any]:
    """``raw`` with the first object along ``path`` that has the key replaced (or deleted for ``...``)."""
    mutated = copy.deepcopy(raw)
    stack: list[Any] = [mutated]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in path:
                if key in node:
                    if value is ...:
                        del node[key]
                    else:
                        node[key] = value
                    return mutated
            stack.extend(node.values())
    return mutated


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([message(), button(), message(text=None, photo=[{"file_id": "p"}])]),
    st.lists(FIELDS, min_size=1, max_size=3),
    JSON | st.just(...),
)
def test_no_mutation_of_a_valid_update_makes_validation_raise(
    base: dict[str, Any], path: list[str], value: object
) -> None:
    raw = mutate(base, path, value)
    item = event_from_update(raw, bot_id=3, bot_username=BOT)
    if item is None:
        assert update_id_of(raw) is None
        return
    assert item.update_id == raw["update_id"] and item.bot_id == 3
    if isinstance(item, Event):
        for some_id in (item.chat_id, item.user_id):
            assert type(some_id) is int and abs(some_id) < 2**53
        assert item.text is None or isinstance(item.text, str)
