"""Builds the updates a Telegram user would cause: typed text, a pressed button, a photo, a sticker."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from durabot.sandbox.files import generate_png
from durabot.sandbox.markup import MAX_TEXT_LENGTH
from durabot.sandbox.state import BotState, Chat, StoredMessage, now

COMMAND_PATTERN = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
KINDS = ("message", "callback", "photo", "sticker")


class InjectError(ValueError):
    """A test API request that does not describe an update a user could cause."""


def build_update(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """The update (without ``update_id``) described by a test API body, recording user messages in the chat.

    Raises:
        InjectError: the body is incomplete or refers to a message that does not exist.
    """
    if "update" in body:
        raw = body["update"]
        if not isinstance(raw, dict) or not raw:
            raise InjectError('"update" must be a non-empty object')
        return {key: value for key, value in raw.items() if key != "update_id"}
    kind = body.get("type")
    if kind not in KINDS:
        raise InjectError(f'"type" must be one of {", ".join(KINDS)}, or give a raw "update"')
    chat = bot.chat(_integer(body, "chat_id"))
    user = _user(body, chat)
    if kind == "callback":
        return {"callback_query": _callback_query(bot, chat, user, body)}
    if kind == "message":
        content = _text_content(body)
    elif kind == "photo":
        content = _photo_content(bot, body)
    else:
        content = _sticker_content(bot, body)
    message = {"message_id": chat.new_message_id(), "from": user, "chat": chat.describe(), "date": now(), **content}
    chat.add(StoredMessage(message, from_bot=False))
    return {"message": copy.deepcopy(message)}


def _integer(body: dict[str, Any], name: str) -> int:
    """A required whole-number field."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InjectError(f'"{name}" must be an integer')
    try:
        return int(value)
    except ValueError:
        raise InjectError(f'"{name}" must be an integer') from None


def _user(body: dict[str, Any], chat: Chat) -> dict[str, Any]:
    """The sending user; in a private chat ``user_id`` defaults to the chat id."""
    user_id = _integer(body, "user_id") if "user_id" in body else chat.chat_id
    if user_id <= 0:
        raise InjectError('"user_id" must be a positive integer')
    first_name = str(body.get("first_name") or "Sandbox user")
    if chat.chat_id > 0:
        chat.first_name = first_name
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
    if body.get("username"):
        user["username"] = str(body["username"])
    return user


def _text_content(body: dict[str, Any]) -> dict[str, Any]:
    """Typed text, with ``bot_command`` entities for each ``/command`` in it."""
    text = body.get("text")
    if not isinstance(text, str) or not text:
        raise InjectError('"text" must be a non-empty string')
    if len(text) > MAX_TEXT_LENGTH:
        raise InjectError("Telegram clients split text over 4096 characters into several messages")
    content: dict[str, Any] = {"text": text}
    entities = [
        {"type": "bot_command", "offset": _utf16_length(text[: match.start()]), "length": _utf16_length(match.group())}
        for match in COMMAND_PATTERN.finditer(text)
    ]
    if entities:
        content["entities"] = entities
    return content


def _utf16_length(text: str) -> int:
    """Telegram measures entity offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _photo_content(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """A generated photo; ``size_bytes`` pads it (e.g. past the 20 MB download limit)."""
    pad_to = _integer(body, "size_bytes") if "size_bytes" in body else 0
    stored = bot.files.add(generate_png(pad_to=pad_to), "photos", "png")
    content: dict[str, Any] = {"photo": [stored.photo_size()]}
    if body.get("caption"):
        content["caption"] = str(body["caption"])
    return content


def _sticker_content(bot: BotState, body: dict[str, Any]) -> dict[str, Any]:
    """A generated still sticker."""
    stored = bot.files.add(generate_png(128, 128), "stickers", "png")
    return {
        "sticker": {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": str(body.get("emoji") or "👍"),
            "file_size": len(stored.data),
        }
    }


def _callback_query(bot: BotState, chat: Chat, user: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A press of a button under a bot message; any ``data`` is accepted, as from a stale keyboard."""
    message_id = _integer(body, "message_id")
    stored = chat.messages.get(message_id)
    if stored is None or not stored.from_bot:
        raise InjectError(f"no bot message {message_id} in chat {chat.chat_id}")
    data = body.get("data")
    if not isinstance(data, str) or not data:
        raise InjectError('"data" must be a non-empty string')
    query = bot.new_callback_query(chat.chat_id, message_id)
    return {
        "id": query.query_id,
        "from": user,
        "message": copy.deepcopy(stored.message),
        "chat_instance": str(int(hashlib.sha256(f"{bot.token}:{chat.chat_id}".encode()).hexdigest()[:15], 16)),
        "data": data,
    }
