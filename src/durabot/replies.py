"""What the bot says back, as plain data: messages with optional buttons, files, and button acknowledgements."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Reply:
    """A message to the chat, with rows of buttons under it."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()


@dataclass(frozen=True)
class CallbackAnswer:
    """The acknowledgement of a pressed button, with an optional short notice."""

    callback_id: str
    text: str | None = None


@dataclass(frozen=True)
class Document:
    """A file sent to the chat (``sendDocument``): its name, its text content and an optional caption."""

    filename: str
    content: str
    caption: str | None = None


@dataclass(frozen=True)
class Photo:
    """A photo Telegram keeps, sent again by its ``file_id`` (``sendPhoto``), with an optional caption."""

    file_id: str
    caption: str | None = None


Outgoing = Reply | CallbackAnswer | Document | Photo
"""Anything the engine queues for sending (stored by :func:`durabot.outbox.encode`)."""
