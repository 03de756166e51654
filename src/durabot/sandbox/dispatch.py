"""Routes a Bot API call to its method, applying injected faults and logging the call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from durabot.sandbox import api, messaging
from durabot.sandbox.errors import ApiError, not_found
from durabot.sandbox.params import Params, read_params
from durabot.sandbox.state import BotRegistry, BotState, CallRecord

Method = Callable[[BotState, Params], Awaitable[Any]]

METHODS: dict[str, Method] = {
    "getMe": api.get_me,
    "getUpdates": api.get_updates,
    "setWebhook": api.set_webhook,
    "deleteWebhook": api.delete_webhook,
    "getWebhookInfo": api.get_webhook_info,
    "setMyCommands": api.set_my_commands,
    "getMyCommands": api.get_my_commands,
    "deleteMyCommands": api.delete_my_commands,
    "sendMessage": messaging.send_message,
    "sendPhoto": messaging.send_photo,
    "sendDocument": messaging.send_document,
    "editMessageText": messaging.edit_message_text,
    "editMessageReplyMarkup": messaging.edit_message_reply_markup,
    "deleteMessage": messaging.delete_message,
    "sendChatAction": messaging.send_chat_action,
    "answerCallbackQuery": messaging.answer_callback_query,
    "getFile": messaging.get_file,
}
"""The methods the sandbox serves, by Telegram's name."""

_BY_LOWER_NAME = {name.lower(): name for name in METHODS}


def canonical_name(method: str) -> str:
    """Telegram's spelling of a method name, which callers may write in any case."""
    return _BY_LOWER_NAME.get(method.lower(), method)


async def handle_call(registry: BotRegistry, token: str, method: str, request: web.Request) -> web.Response:
    """Answer one Bot API request with ``{"ok": true, "result": …}`` or a Telegram error."""
    try:
        bot = registry.get(token)
    except ApiError as error:
        return web.json_response(error.body(), status=error.status)
    name = canonical_name(method)
    record = CallRecord(name, {}, time.monotonic())
    bot.calls.append(record)
    try:
        params = await read_params(request)
        record.params = params.loggable()
        if name not in METHODS:
            raise not_found()
        fault = bot.faults.strike(name)
        if fault is not None:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            failure = fault.error()
            if failure is not None:
                raise failure
        body: dict[str, Any] = {"ok": True, "result": await METHODS[name](bot, params)}
        record.status = 200
    except ApiError as error:
        body, record.status = error.body(), error.status
    return web.json_response(body, status=record.status)
