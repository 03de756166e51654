"""The outbox in one place: its stored statuses and methods, a claimed item, the queue port and the payload codec.

Steps write replies to the outbox in their own transaction (see ``engine.ports.Outbox``); the relay
claims them through :class:`OutboxQueue` and sends each with a :class:`~durabot.transport.sender.Sender`.
The strings in :class:`OutboxStatus` and :class:`OutboxMethod` are stored in ``outbox_messages``:
renaming one is a migration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from durabot.replies import Button, CallbackAnswer, Document, Outgoing, Photo, Reply


class OutboxStatus(StrEnum):
    """Where a row is in its life; only ``pending`` and ``sending`` rows are still to be delivered."""

    PENDING = "pending"
    """Waiting for its turn (or for a retry at ``next_attempt_at``)."""
    SENDING = "sending"
    """Claimed by a relay until ``next_attempt_at`` (its lease); claimed again once that has passed."""
    SENT = "sent"
    """Delivered."""
    DEAD = "dead"
    """Given up on; ``last_error`` says why."""


UNFINISHED = (OutboxStatus.PENDING, OutboxStatus.SENDING)
UNFINISHED_VALUES = tuple(status.value for status in UNFINISHED)
"""The same, as the strings stored in ``outbox_messages.status``."""
"""The statuses of rows still to be delivered: a chat's oldest such row is its head."""


class OutboxMethod(StrEnum):
    """Which Bot API call a row is for."""

    SEND_MESSAGE = "send_message"
    ANSWER_CALLBACK = "answer_callback"
    SEND_DOCUMENT = "send_document"
    SEND_PHOTO = "send_photo"


class UndecodableMessageError(ValueError):
    """A stored row whose method is unknown or whose payload lacks what its method needs; it can never be sent."""


class OutboxUnavailableError(Exception):
    """The queue's store cannot be reached right now; the message says why in a log-safe way. Try again later."""


@dataclass(frozen=True)
class OutboxItem:
    """A claimed message: what to call, with what, and how many attempts it has had (this one included)."""

    id: int
    chat_id: int
    method: str
    payload: dict[str, Any]
    attempts: int

    def message(self) -> Outgoing:
        """The message to send, read back from the stored payload.

        Raises:
            UndecodableMessageError: the row cannot be read as any message.
        """
        return decode(self.method, self.payload)


class OutboxQueue(Protocol):
    """Where the relay takes messages from and reports back to.

    Only a chat's oldest unfinished row (its head) can be claimed, so a chat's messages go out
    in order, one at a time. A claim lasts for a lease; an implementation shared by several
    relays never hands the same row to two of them at once.
    """

    async def claim(self, limit: int, lease: timedelta) -> list[OutboxItem]:
        """Claim up to ``limit`` due heads (at most one row per chat) for ``lease``, oldest first."""

    async def extend_lease(self, item_ids: Sequence[int], lease: timedelta) -> None:
        """Keep the claims on rows still being sent for ``lease`` from now."""

    async def mark_sent(self, item_id: int) -> None:
        """The message was delivered."""

    async def retry_at(self, item_id: int, when: datetime, error: str) -> None:
        """Sending failed for now; try again at ``when``; the row stays its chat's head."""

    async def dead_letter(self, item_id: int, error: str) -> None:
        """Sending can never succeed; keep the row and the reason, and let the chat move on."""


def encode(message: Outgoing) -> tuple[OutboxMethod, dict[str, Any]]:
    """The method and JSON payload stored for ``message``."""
    match message:
        case Reply(text, buttons):
            return OutboxMethod.SEND_MESSAGE, {"text": text, "buttons": [[_button(b) for b in row] for row in buttons]}
        case CallbackAnswer(callback_id, text):
            return OutboxMethod.ANSWER_CALLBACK, {"callback_id": callback_id, "text": text}
        case Document(filename, content, caption):
            return OutboxMethod.SEND_DOCUMENT, {"filename": filename, "content": content, "caption": caption}
        case Photo(file_id, caption):
            return OutboxMethod.SEND_PHOTO, {"file_id": file_id, "caption": caption}
    raise TypeError(f"not an outgoing message: {type(message).__name__}")


def decode(method: str, payload: dict[str, Any]) -> Outgoing:
    """Read back what :func:`encode` stored.

    Raises:
        UndecodableMessageError: ``method`` is unknown, or ``payload`` lacks a field it needs.
    """
    try:
        match method:
            case OutboxMethod.SEND_MESSAGE:
                rows = tuple(tuple(_read_button(b) for b in row) for row in payload.get("buttons") or ())
                return Reply(payload["text"], rows)
            case OutboxMethod.ANSWER_CALLBACK:
                return CallbackAnswer(payload["callback_id"], payload.get("text"))
            case OutboxMethod.SEND_DOCUMENT:
                return Document(payload["filename"], payload["content"], payload.get("caption"))
            case OutboxMethod.SEND_PHOTO:
                return Photo(str(payload["file_id"]), payload.get("caption"))
    except (KeyError, TypeError, ValueError) as error:
        raise UndecodableMessageError(f"{method} payload is malformed: {type(error).__name__}") from None
    raise UndecodableMessageError(f"unknown outbox method {method!r}")


def _button(button: Button) -> dict[str, str]:
    return {"label": button.label, "url": button.url} if button.url else {"label": button.label, "data": button.data}


def _read_button(stored: dict[str, str]) -> Button:
    return Button.link(stored["label"], stored["url"]) if stored.get("url") else Button(stored["label"], stored["data"])
