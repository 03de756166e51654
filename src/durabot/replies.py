"""What the bot says back, as plain data: messages with optional buttons, files, and button acknowledgements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MESSAGE_METHOD = "send_message"
CALLBACK_ANSWER_METHOD = "answer_callback"
DOCUMENT_METHOD = "send_document"
LINK_SCHEMES = ("https://", "tg://")


@dataclass(frozen=True)
class Button:
    """An inline button: the label shown and either the data sent back when pressed (1–64 bytes) or a link.

    Make a link button with :meth:`link`; it opens ``url`` instead of sending anything back.
    """

    label: str
    data: str = ""
    url: str = ""

    def __post_init__(self) -> None:
        if self.url:
            if self.data or not self.url.startswith(LINK_SCHEMES):
                raise ValueError(f"a link button has an https:// or tg:// url and no data, got {self.url!r}")
        elif not 1 <= len(self.data.encode()) <= 64:
            raise ValueError(f"button data must be 1-64 bytes, got {self.data!r}")

    @classmethod
    def link(cls, label: str, url: str) -> Button:
        """A button that opens ``url``."""
        return cls(label, url=url)

    def to_json(self) -> dict[str, str]:
        """The button as stored in a payload."""
        return {"label": self.label, "url": self.url} if self.url else {"label": self.label, "data": self.data}

    @classmethod
    def from_json(cls, stored: dict[str, str]) -> Button:
        """Read back what :meth:`to_json` produced."""
        return cls(stored["label"], url=stored["url"]) if stored.get("url") else cls(stored["label"], stored["data"])


@dataclass(frozen=True)
class Reply:
    """A message to the chat, with rows of buttons under it."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()

    method = MESSAGE_METHOD

    def payload(self) -> dict[str, Any]:
        """The JSON stored in the outbox for this message."""
        return {"text": self.text, "buttons": [[button.to_json() for button in row] for row in self.buttons]}


@dataclass(frozen=True)
class CallbackAnswer:
    """The acknowledgement of a pressed button, with an optional short notice."""

    callback_id: str
    text: str | None = None

    method = CALLBACK_ANSWER_METHOD

    def payload(self) -> dict[str, Any]:
        """The JSON stored in the outbox for this acknowledgement."""
        return {"callback_id": self.callback_id, "text": self.text}


@dataclass(frozen=True)
class Document:
    """A file sent to the chat (``sendDocument``): its name, its text content and an optional caption."""

    filename: str
    content: str
    caption: str | None = None

    method = DOCUMENT_METHOD

    def payload(self) -> dict[str, Any]:
        """The JSON stored in the outbox for this file."""
        return {"filename": self.filename, "content": self.content, "caption": self.caption}


Outgoing = Reply | CallbackAnswer | Document
"""Anything the engine queues for sending."""


def reply_from_payload(payload: dict[str, Any]) -> Reply:
    """Rebuild a :class:`Reply` from its stored payload."""
    rows = tuple(tuple(Button.from_json(button) for button in row) for row in payload.get("buttons", []))
    return Reply(payload["text"], rows)
