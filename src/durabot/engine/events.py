"""Incoming events as the engine sees them: a typed message, a pressed button, or other content."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """What the user did."""

    TEXT = "text"
    CALLBACK = "callback"
    CONTENT = "content"


@dataclass(frozen=True)
class Event:
    """One update from a user, identified by the transport's ``update_id``.

    Attributes:
        update_id: The transport's id of the update; with ``bot_id`` and the update's fingerprint
            it identifies the update, so a redelivery is applied once and a reused id is not mistaken for one.
        chat_id: Chat the update came from; updates of one chat are applied in id order.
        user_id: The user who sent it.
        kind: Typed text, a pressed button, or content that is not text.
        text: The typed text, or the button's data for a callback.
        callback_id: Id to acknowledge a pressed button with.
        content_type: For :attr:`EventKind.CONTENT`, what was sent ("photo", "sticker", …); its
            caption, if any, is in ``text``.
        bot_id: The bot the update was sent to (the number before the colon of its token).
        file_id: For a photo, the Bot API's id of its largest size, to keep and send again.
    """

    update_id: int
    chat_id: int
    user_id: int
    kind: EventKind
    text: str | None = None
    callback_id: str | None = None
    content_type: str | None = None
    bot_id: int = 0
    file_id: str | None = None

    @classmethod
    def message(cls, update_id: int, chat_id: int, user_id: int, text: str) -> Event:
        """A typed message."""
        return cls(update_id, chat_id, user_id, EventKind.TEXT, text=text)

    @classmethod
    def button(cls, update_id: int, chat_id: int, user_id: int, data: str, callback_id: str) -> Event:
        """A pressed inline button carrying ``data``."""
        return cls(update_id, chat_id, user_id, EventKind.CALLBACK, text=data, callback_id=callback_id)

    @classmethod
    def content(cls, update_id: int, chat_id: int, user_id: int, content_type: str) -> Event:
        """Something other than text: a photo, a sticker, a voice note…"""
        return cls(update_id, chat_id, user_id, EventKind.CONTENT, content_type=content_type)

    @classmethod
    def photo(cls, update_id: int, chat_id: int, user_id: int, file_id: str, caption: str | None = None) -> Event:
        """A photo (``file_id``: its largest size), with its caption if any."""
        return cls(update_id, chat_id, user_id, EventKind.CONTENT, text=caption, content_type="photo", file_id=file_id)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form for the inbox."""
        return {
            "update_id": self.update_id,
            "chat_id": self.chat_id,
            "user_id": self.user_id,
            "kind": self.kind.value,
            "text": self.text,
            "callback_id": self.callback_id,
            "content_type": self.content_type,
            "bot_id": self.bot_id,
            "file_id": self.file_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        """Read back what :meth:`to_json` produced."""
        return cls(**{**data, "kind": EventKind(data["kind"])})


@dataclass(frozen=True)
class IgnoredUpdate:
    """An update the bot will not act on, stored as such with the reason (malformed, not for this bot, …).

    It is recorded in the inbox in its terminal state, so it is never retried and never holds back another.
    """

    update_id: int
    reason: str
    bot_id: int = 0
    chat_id: int | None = None
    user_id: int | None = None


Received = Event | IgnoredUpdate
"""What a transport hands the engine for each update it took in."""


def fingerprint(raw: Any) -> str:
    """A digest of an update's content: equal for a redelivery, different for another update under the same id."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Command:
    """A ``/command`` parsed from typed text."""

    name: str
    argument: str

    @classmethod
    def parse(cls, text: str) -> Command | None:
        """The command in ``text``, or ``None`` if it is not one (``/Cmd@bot arg`` → ``cmd``, ``arg``)."""
        stripped = text.strip()
        if not stripped.startswith("/") or len(stripped) == 1:
            return None
        head, _, argument = stripped[1:].partition(" ")
        name = head.split("@", 1)[0].lower()
        if not name or not all(ch.isalnum() or ch == "_" for ch in name):
            return None
        return cls(name, argument.strip())
