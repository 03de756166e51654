"""Strict reading of raw Telegram updates at the edge: each becomes an Event, an IgnoredUpdate, or is unusable.

Nothing here raises on bad input. An update with no usable ``update_id`` cannot even be stored
(:func:`update_id_of` says so and :func:`event_from_update` returns ``None``); anything else that
is not a well-formed message or button press becomes an :class:`IgnoredUpdate` with its reason,
which the inbox records in its terminal state. Reasons name fields and shapes, never content.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from durabot.engine.events import Event, EventKind, IgnoredUpdate, Received
from durabot.sanitise import storable_text

log = structlog.get_logger("durabot.transport")

MAX_UPDATE_ID = 2**63
"""Exclusive upper bound of a storable ``update_id`` (a signed 64-bit column); Telegram's are 32-bit."""
MAX_ENTITY_ID = 2**53
"""Exclusive bound of ``|id|`` for chats and users: Telegram documents at most 52 significant bits."""
ACTED_ON = ("message", "callback_query")
"""The update kinds the bot acts on; every other kind is stored as ignored."""
CONTENT_TYPES = (
    "photo",
    "sticker",
    "document",
    "video",
    "animation",
    "voice",
    "audio",
    "video_note",
    "location",
    "contact",
    "poll",
    "dice",
)
_KIND_NAME = re.compile(r"[a-z_]{1,40}")
_ADDRESSED_COMMAND = re.compile(r"/\w+@(\w+)", re.ASCII)
_PROBLEMS = {
    "int_type": "not an integer",
    "string_type": "not a string",
    "model_type": "not an object",
    "greater_than": "out of range",
    "less_than": "out of range",
}

TelegramId = Annotated[StrictInt, Field(gt=-MAX_ENTITY_ID, lt=MAX_ENTITY_ID)]


class _Wire(BaseModel):
    """The part of a Telegram object the bot reads, with strict types (a bool is not an int)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class WireUser(_Wire):
    """A ``User``: only its id matters here."""

    id: TelegramId


class WireChat(_Wire):
    """A ``Chat``: only its id matters here."""

    id: TelegramId


class WirePhotoSize(_Wire):
    """One size of a sent photo: the id to fetch it by."""

    file_id: StrictStr = Field(min_length=1, max_length=256)


class WireMessage(_Wire):
    """A ``Message`` as far as the bot reads it: where, from whom, its text or its photo (with a caption) if any."""

    chat: WireChat
    sender: WireUser | None = Field(default=None, alias="from")
    text: StrictStr | None = None
    photo: list[WirePhotoSize] | None = None
    caption: StrictStr | None = None


class WireButtonMessage(_Wire):
    """The message under a pressed button (it may be an ``InaccessibleMessage``; both have a chat)."""

    chat: WireChat


class WireCallbackQuery(_Wire):
    """A ``CallbackQuery``: who pressed which button under which message."""

    id: StrictStr
    sender: WireUser = Field(alias="from")
    message: WireButtonMessage | None = None
    data: StrictStr | None = None


def update_id_of(raw: object) -> int | None:
    """The update's ``update_id`` if it is one that can be stored: an int, not a bool, in ``[0, 2**63)``."""
    if not isinstance(raw, Mapping):
        return None
    update_id = raw.get("update_id")
    if type(update_id) is not int or not 0 <= update_id < MAX_UPDATE_ID:
        return None
    return update_id


def update_kind(raw: Mapping[str, Any]) -> str | None:
    """Which kind of update this is ("message", "callback_query", "edited_message", …), if any."""
    acted_on = next((kind for kind in ACTED_ON if kind in raw), None)
    return acted_on or next((str(key) for key in raw if key != "update_id"), None)


def event_from_update(raw: object, bot_id: int = 0, bot_username: str | None = None) -> Received | None:
    """What the engine should store for a raw update received by the bot ``bot_id`` (``@bot_username``).

    Args:
        raw: The update as decoded from JSON; any shape at all.
        bot_id: The receiving bot (the number before the colon of its token).
        bot_username: The receiving bot's username, to recognise commands for other bots; ``None`` when unknown.

    Returns:
        An :class:`Event` for a well-formed message or button press, an :class:`IgnoredUpdate` with its
        reason for anything else, or ``None`` when the update has no usable ``update_id`` to store it under.
    """
    update_id = update_id_of(raw)
    if update_id is None:
        return None
    assert isinstance(raw, Mapping)
    kind = update_kind(raw)
    if kind is None:
        return IgnoredUpdate(update_id, "no content", bot_id)
    if kind == "message":
        return _from_message(update_id, raw[kind], bot_id, bot_username)
    if kind == "callback_query":
        return _from_callback(update_id, raw[kind], bot_id)
    return IgnoredUpdate(update_id, f"not acted on: {kind if _KIND_NAME.fullmatch(kind) else 'unknown kind'}", bot_id)


def _from_message(update_id: int, raw: Any, bot_id: int, bot_username: str | None) -> Received:
    try:
        message = WireMessage.model_validate(raw)
    except ValidationError as error:
        return IgnoredUpdate(update_id, _reason("message", error), bot_id)
    chat_id = message.chat.id
    if message.sender is None:
        return IgnoredUpdate(update_id, "message without from", bot_id, chat_id=chat_id)
    user_id = message.sender.id
    if message.text is None:
        content = next((kind for kind in CONTENT_TYPES if raw.get(kind)), "message")
        file_id = message.photo[-1].file_id if content == "photo" and message.photo else None  # the largest size
        caption = storable_text(message.caption) if message.caption is not None else None
        return Event(
            update_id, chat_id, user_id, EventKind.CONTENT, text=caption, content_type=content, bot_id=bot_id, file_id=file_id
        )
    if _for_another_bot(message.text, bot_username):
        return IgnoredUpdate(update_id, "command for another bot", bot_id, chat_id=chat_id, user_id=user_id)
    return Event(update_id, chat_id, user_id, EventKind.TEXT, text=storable_text(message.text), bot_id=bot_id)


def _from_callback(update_id: int, raw: Any, bot_id: int) -> Received:
    try:
        query = WireCallbackQuery.model_validate(raw)
    except ValidationError as error:
        return IgnoredUpdate(update_id, _reason("callback_query", error), bot_id)
    if query.message is None:
        return IgnoredUpdate(update_id, "callback_query without message", bot_id, user_id=query.sender.id)
    return Event(
        update_id,
        query.message.chat.id,
        query.sender.id,
        EventKind.CALLBACK,
        text=storable_text(query.data or ""),
        callback_id=storable_text(query.id),
        bot_id=bot_id,
    )


def _for_another_bot(text: str, bot_username: str | None) -> bool:
    """Whether ``text`` starts with a ``/command@name`` whose name is not this bot's (any case)."""
    match = _ADDRESSED_COMMAND.match(text.lstrip())
    if match is None or bot_username is None:
        return False
    return match.group(1).casefold() != bot_username.casefold()


def _reason(kind: str, error: ValidationError) -> str:
    """A short reason from the first problem found: "message without chat", "malformed message.chat.id: …"."""
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join([kind, *(str(part) for part in first["loc"])])
    if first["type"] == "missing":
        parent, _, field = where.rpartition(".")
        return f"{parent} without {field}"
    return f"malformed {where}: {_PROBLEMS.get(first['type'], first['type'])}"


def read_batch(batch: list[Any], bot_id: int, bot_username: str | None) -> tuple[list[Received], dict[int, Any]]:
    """What to store of a ``getUpdates`` batch: each usable update, and the raw JSON of each by ``update_id``.

    An update without a usable ``update_id`` is left out and logged with its position and shape only.
    """
    items: list[Received] = []
    raw: dict[int, Any] = {}
    for position, update in enumerate(batch):
        item = event_from_update(update, bot_id, bot_username)
        if item is None:
            log.warning("transport.unusable_update", position=position, shape=type(update).__name__)
            continue
        items.append(item)
        raw[item.update_id] = update
    return items, raw
