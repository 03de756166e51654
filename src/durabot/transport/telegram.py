"""Translation between Telegram's types and the engine's: updates to events, replies to Bot API calls."""

from __future__ import annotations

from typing import Any

import structlog
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update

from durabot.engine.events import Event
from durabot.engine.registry import Registry

log = structlog.get_logger("durabot.transport")

MAX_MESSAGE_LENGTH = 4096
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


def make_bot(token: str, api_base_url: str) -> Bot:
    """A Bot API client for ``token`` on the server at ``api_base_url`` (Telegram's or a compatible one)."""
    root = api_base_url.rstrip("/")
    return Bot(token, base_url=f"{root}/bot", base_file_url=f"{root}/file/bot")


def event_from_update(raw: dict[str, Any], bot: Bot | None = None) -> Event | None:
    """The engine event for a raw update, or ``None`` for updates the bot does not act on.

    Malformed updates are logged and ignored rather than raised: one bad update must
    not stop the ones behind it.
    """
    try:
        update = Update.de_json(raw, bot)
    except Exception:
        log.warning("transport.malformed_update", update_id=raw.get("update_id"))
        return None
    if update is None:
        return None
    query = update.callback_query
    if query is not None:
        if query.message is None:
            return None
        return Event.button(update.update_id, query.message.chat.id, query.from_user.id, query.data or "", query.id)
    message = update.message
    if message is None or message.from_user is None:
        return None
    if message.text is not None:
        return Event.message(update.update_id, message.chat.id, message.from_user.id, message.text)
    content = next((kind for kind in CONTENT_TYPES if getattr(message, kind, None)), "message")
    return Event.content(update.update_id, message.chat.id, message.from_user.id, content)


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at a line break or space where possible."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit)
        if cut <= 0:
            pieces.append(rest[:limit])
            rest = rest[limit:]
        else:
            pieces.append(rest[:cut])
            rest = rest[cut + 1 :]
    pieces.append(rest)
    return pieces


def keyboard(buttons: list[list[dict[str, str]]]) -> InlineKeyboardMarkup | None:
    """The inline keyboard for stored button rows."""
    rows = [[InlineKeyboardButton(b["label"], callback_data=b["data"]) for b in row] for row in buttons if row]
    return InlineKeyboardMarkup(rows) if rows else None


def bot_commands(registry: Registry) -> list[BotCommand]:
    """The command menu for ``setMyCommands``, from what the bot understands."""
    commands = []
    for entry in registry.flows:
        commands.append(BotCommand(entry.flow.command, entry.description))
        commands += [BotCommand(name, description) for name, description in entry.extra_commands()]
    commands += [BotCommand(entry.name, entry.description) for entry in registry.commands]
    commands += [
        BotCommand("skip", "skip an optional question"),
        BotCommand("back", "go back to the previous question"),
        BotCommand("cancel", "stop what you are doing"),
        BotCommand("help", "what I can do"),
    ]
    return commands
