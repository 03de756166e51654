"""What the bot says back, as plain data: messages with optional buttons, and button acknowledgements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MESSAGE_METHOD = "send_message"
CALLBACK_ANSWER_METHOD = "answer_callback"


@dataclass(frozen=True)
class Button:
    """An inline button: the label shown and the data sent back when pressed (at most 64 bytes)."""

    label: str
    data: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.data.encode()) <= 64:
            raise ValueError(f"button data must be 1-64 bytes, got {self.data!r}")


@dataclass(frozen=True)
class Reply:
    """A message to the chat, with rows of buttons under it."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()

    method = MESSAGE_METHOD

    def payload(self) -> dict[str, Any]:
        """The JSON stored in the outbox for this message."""
        return {
            "text": self.text,
            "buttons": [[{"label": b.label, "data": b.data} for b in row] for row in self.buttons],
        }


@dataclass(frozen=True)
class CallbackAnswer:
    """The acknowledgement of a pressed button, with an optional short notice."""

    callback_id: str
    text: str | None = None

    method = CALLBACK_ANSWER_METHOD

    def payload(self) -> dict[str, Any]:
        """The JSON stored in the outbox for this acknowledgement."""
        return {"callback_id": self.callback_id, "text": self.text}


Outgoing = Reply | CallbackAnswer
"""Anything the engine queues for sending."""


def reply_from_payload(payload: dict[str, Any]) -> Reply:
    """Rebuild a :class:`Reply` from its stored payload."""
    rows = tuple(
        tuple(Button(button["label"], button["data"]) for button in row) for row in payload.get("buttons", [])
    )
    return Reply(payload["text"], rows)
