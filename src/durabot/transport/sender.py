"""The port the relay sends replies through, and the three ways a send can fail: retry soon, wait as told, give up."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from durabot.replies import Button, CallbackAnswer, Document, Photo

Buttons = tuple[tuple[Button, ...], ...]
"""Rows of inline buttons under a message."""


class SendError(Exception):
    """A send failed; the message says why in the server's words (never the message's own text)."""


class TransientSendError(SendError):
    """Network trouble or a server error (5xx): the same call may well succeed in a moment."""


class FloodControlError(SendError):
    """The server asked to wait (429) before sending again.

    Args:
        retry_after: How long to wait.
        description: Why, in the server's words.
    """

    def __init__(self, retry_after: timedelta, description: str) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """No retry can make this send succeed: the user blocked the bot, the chat is gone, the request is bad."""


class Sender(Protocol):
    """Where replies go out: one call per message, raising a :class:`SendError` when it fails."""

    async def send_text(self, chat_id: int, text: str, buttons: Buttons = ()) -> None:
        """Send one message of at most the server's length limit, with ``buttons`` under it."""

    async def send_document(self, chat_id: int, document: Document) -> None:
        """Send a file with its caption."""

    async def send_photo(self, chat_id: int, photo: Photo) -> None:
        """Send a photo Telegram keeps, by its file id, with its caption."""

    async def answer_callback(self, answer: CallbackAnswer) -> None:
        """Acknowledge a pressed button, with the answer's short notice if it has one."""
