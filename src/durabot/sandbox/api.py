"""The Bot API methods about the bot itself: identity, receiving updates, webhooks and commands."""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import suppress
from typing import Any

from durabot.sandbox.errors import bad_request, conflict
from durabot.sandbox.params import Params
from durabot.sandbox.state import BOT_FIRST_NAME, BOT_USERNAME, BotState, Webhook

MAX_UPDATES = 100
COMMAND_PATTERN = re.compile(r"^[a-z0-9_]{1,32}$")
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
MAX_COMMANDS = 100
WEBHOOK_ACTIVE = "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
OTHER_POLLER = "terminated by other getUpdates request; make sure that only one bot instance is running"


async def get_me(bot: BotState, params: Params) -> dict[str, Any]:
    """The bot's own ``User``."""
    return {
        "id": bot.bot_id,
        "is_bot": True,
        "first_name": BOT_FIRST_NAME,
        "username": BOT_USERNAME,
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


async def get_updates(bot: BotState, params: Params) -> list[dict[str, Any]]:
    """Confirm updates below ``offset``, then return pending ones, long-polling up to ``timeout`` seconds.

    Raises:
        ApiError: 409 while a webhook is set, or when a newer ``getUpdates`` call replaces this one.
    """
    if bot.webhook is not None:
        raise conflict(WEBHOOK_ACTIVE)
    offset = params.integer("offset")
    limit = min(max(params.integer("limit") or MAX_UPDATES, 1), MAX_UPDATES)
    timeout = max(params.number("timeout") or 0.0, 0.0)
    allowed = params.json("allowed_updates")
    if isinstance(allowed, list):
        bot.allowed_updates = [str(kind) for kind in allowed] or None
    if offset is not None and offset < 0:
        bot.queue.keep_last(-offset)
        offset = None
    elif offset is not None:
        bot.queue.confirm_below(offset)
    bot.poll_generation += 1
    generation = bot.poll_generation
    bot.queue.notify()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        changed = bot.queue.changed
        if generation != bot.poll_generation:
            raise conflict(OTHER_POLLER)
        if bot.webhook is not None:
            raise conflict(WEBHOOK_ACTIVE)
        updates = bot.queue.take(offset, limit, bot.allowed_updates)
        remaining = deadline - loop.time()
        if updates or remaining <= 0 or bot.queue.closed:
            return updates
        with suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), remaining)


async def set_webhook(bot: BotState, params: Params) -> bool:
    """Start pushing updates to ``url`` (any http or https URL); an empty ``url`` removes the webhook.

    Raises:
        ApiError: 400 for a URL that is not http(s), a malformed secret or ``max_connections`` outside 1–100.
    """
    url = (params.text("url") or "").strip()
    if not url:
        return await delete_webhook(bot, params)
    if not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.text("secret_token")
    if secret is not None and not SECRET_PATTERN.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = params.integer("max_connections") or 40
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    allowed = params.json("allowed_updates")
    if isinstance(allowed, list):
        bot.allowed_updates = [str(kind) for kind in allowed] or None
    if params.flag("drop_pending_updates"):
        bot.queue.drop_all()
    bot.webhook = Webhook(url, secret or None, max_connections, bot.allowed_updates)
    bot.queue.notify()
    return True


async def delete_webhook(bot: BotState, params: Params) -> bool:
    """Stop pushing updates; ``getUpdates`` works again."""
    if params.flag("drop_pending_updates"):
        bot.queue.drop_all()
    bot.webhook = None
    bot.queue.notify()
    return True


async def get_webhook_info(bot: BotState, params: Params) -> dict[str, Any]:
    """The webhook's URL, pending update count and last delivery error."""
    webhook = bot.webhook
    info: dict[str, Any] = {
        "url": webhook.url if webhook else "",
        "has_custom_certificate": False,
        "pending_update_count": len(bot.queue.pending()),
    }
    if webhook is not None:
        info["max_connections"] = webhook.max_connections
        if webhook.allowed_updates:
            info["allowed_updates"] = webhook.allowed_updates
        if webhook.last_error_date is not None:
            info["last_error_date"] = webhook.last_error_date
            info["last_error_message"] = webhook.last_error_message
    return info


def _commands_key(params: Params) -> str:
    """Commands are kept per scope and language, as Telegram keeps them."""
    scope = params.json("scope", error="can't parse BotCommandScope JSON object") or {"type": "default"}
    return json.dumps(scope, sort_keys=True) + "|" + (params.text("language_code") or "")


async def set_my_commands(bot: BotState, params: Params) -> bool:
    """Replace the command list for a scope and language.

    Raises:
        ApiError: 400 for a command outside ``[a-z0-9_]{1,32}`` or a description outside 1–256 characters.
    """
    commands = params.json("commands", error="can't parse commands JSON object")
    if not isinstance(commands, list) or len(commands) > MAX_COMMANDS:
        raise bad_request("can't parse commands JSON object")
    checked: list[dict[str, str]] = []
    for entry in commands:
        if not isinstance(entry, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command, description = entry.get("command"), entry.get("description")
        if not isinstance(command, str) or not COMMAND_PATTERN.match(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        checked.append({"command": command, "description": description})
    bot.commands[_commands_key(params)] = checked
    return True


async def get_my_commands(bot: BotState, params: Params) -> list[dict[str, str]]:
    """The command list for a scope and language (empty if none was set)."""
    return list(bot.commands.get(_commands_key(params), []))


async def delete_my_commands(bot: BotState, params: Params) -> bool:
    """Remove the command list for a scope and language."""
    bot.commands.pop(_commands_key(params), None)
    return True
