"""Translation between python-telegram-bot's types and the engine's: the client, the bot's identity, replies."""

from __future__ import annotations

from telegram import Bot, BotCommand

from durabot.engine.registry import Registry
from durabot.transport.aiohttp_request import AiohttpRequest

MAX_MESSAGE_LENGTH = 4096


def make_bot(token: str, api_base_url: str) -> Bot:
    """A Bot API client for ``token`` on the server at ``api_base_url`` (Telegram's or a compatible one)."""
    root = api_base_url.rstrip("/")
    return Bot(
        token,
        base_url=f"{root}/bot",
        base_file_url=f"{root}/file/bot",
        request=AiohttpRequest(),
        get_updates_request=AiohttpRequest(connections=1),
    )


def bot_id_of(token: str) -> int:
    """The bot's id: the number before the colon of its token (0 for a token without one)."""
    head = token.partition(":")[0]
    return int(head) if head.isascii() and head.isdigit() else 0


def known_username(bot: Bot) -> str | None:
    """The bot's username once ``bot`` is initialised, else ``None``."""
    try:
        return bot.username
    except RuntimeError:
        return None


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
