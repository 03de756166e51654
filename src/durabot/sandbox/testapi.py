"""The JSON test API under ``/sandbox/api/``: inject updates and faults, read what the bot did."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from durabot.sandbox.errors import ApiError
from durabot.sandbox.faults import Fault
from durabot.sandbox.inject import InjectError, build_update
from durabot.sandbox.state import BotRegistry, BotState, StoredMessage

PREFIX = "/sandbox/api"
REGISTRY_KEY = web.AppKey("bot_registry", BotRegistry)

BotHandler = Callable[[web.Request, BotState], Awaitable[dict[str, Any]]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestError(Exception):
    """A test API request that cannot be served; answered as ``{"ok": false, "description": …}``."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def add_routes(app: web.Application) -> None:
    """Register the test API on ``app``, which must hold a :class:`BotRegistry` under ``REGISTRY_KEY``."""
    app.router.add_get(f"{PREFIX}/bots", list_bots)
    for path, handler, method in (
        ("updates", inject_update, "POST"),
        ("updates", pending_updates, "GET"),
        ("redeliver", redeliver, "POST"),
        ("messages", chat_messages, "GET"),
        ("callback_answers", callback_answers, "GET"),
        ("calls", calls, "GET"),
        ("faults", list_faults, "GET"),
        ("faults", add_fault, "POST"),
        ("faults", clear_faults, "DELETE"),
        ("reset", reset, "POST"),
    ):
        app.router.add_route(method, f"{PREFIX}/{{token}}/{path}", _with_bot(handler))


def _with_bot(handler: BotHandler) -> Route:
    """Wrap a handler taking ``(request, bot)`` so it resolves the token and answers errors as JSON."""

    async def route(request: web.Request) -> web.StreamResponse:
        try:
            bot = request.app[REGISTRY_KEY].get(request.match_info["token"])
            result = await handler(request, bot)
        except ApiError as error:
            return web.json_response(error.body(), status=error.status)
        except (RequestError, InjectError) as error:
            status = error.status if isinstance(error, RequestError) else 400
            return web.json_response({"ok": False, "description": str(error)}, status=status)
        return web.json_response(result)

    return route


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object."""
    try:
        body = await request.json()
    except ValueError:
        raise RequestError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    return body


async def list_bots(request: web.Request) -> web.Response:
    """Every bot token seen so far, for the chat page to pick from."""
    bots = [{"token": bot.token, "id": bot.bot_id} for bot in request.app[REGISTRY_KEY]]
    return web.json_response({"bots": bots})


async def inject_update(request: web.Request, bot: BotState) -> dict[str, Any]:
    """Queue an update a user causes; see :func:`durabot.sandbox.inject.build_update` for the body."""
    update = bot.queue.push(build_update(bot, await _json_body(request)))
    return {"update_id": update["update_id"], "update": update}


async def pending_updates(request: web.Request, bot: BotState) -> dict[str, Any]:
    """Updates not yet confirmed by the bot, oldest first."""
    return {"updates": bot.queue.pending()}


async def redeliver(request: web.Request, bot: BotState) -> dict[str, Any]:
    """Queue an earlier update again with its own ``update_id``, even if the bot confirmed it."""
    body = await _json_body(request)
    try:
        update = bot.queue.redeliver(int(body["update_id"]))
    except (KeyError, TypeError, ValueError):
        raise RequestError(404, f"no update {body.get('update_id')!r} was ever queued") from None
    return {"update_id": update["update_id"], "update": update}


async def chat_messages(request: web.Request, bot: BotState) -> dict[str, Any]:
    """Every message in a chat, user's and bot's, in order, and the :attr:`BotState.epoch` they belong to."""
    try:
        chat_id = int(request.query["chat_id"])
    except (KeyError, ValueError):
        raise RequestError(400, "chat_id query parameter (an integer) is required") from None
    chat = bot.chats.get(chat_id)
    messages = [_summary(bot, stored) for stored in chat.messages.values()] if chat else []
    return {"chat_id": chat_id, "epoch": bot.epoch, "messages": messages}


def _summary(bot: BotState, stored: StoredMessage) -> dict[str, Any]:
    """One message as the test API shows it."""
    message = stored.message
    content = next((kind for kind in ("text", "photo", "sticker") if kind in message), "other")
    image = message["photo"][-1] if content == "photo" else message.get("sticker")
    image_file = bot.files.find(image["file_id"]) if image else None
    replied = message.get("reply_to_message")
    return {
        "message_id": stored.message_id,
        "from_bot": stored.from_bot,
        "user_id": message["from"]["id"],
        "content": content,
        "text": message.get("text"),
        "caption": message.get("caption"),
        "reply_markup": stored.markup,
        "date": message["date"],
        "edited": bool(stored.history),
        "edit_date": message.get("edit_date"),
        "previous_versions": [version.get("text", version.get("caption")) for version in stored.history],
        "reply_to_message_id": replied["message_id"] if replied else None,
        "image_url": f"/file/bot{bot.token}/{image_file.file_path}" if image_file else None,
        "message": message,
    }


async def callback_answers(request: web.Request, bot: BotState) -> dict[str, Any]:
    """Every ``answerCallbackQuery`` the bot made, in order."""
    return {"callback_answers": bot.callback_answers}


async def calls(request: web.Request, bot: BotState) -> dict[str, Any]:
    """The Bot API calls received, oldest first, optionally only those of ``?method=`` (any case)."""
    method = request.query.get("method", "").lower()
    return {"calls": [call.to_json() for call in bot.calls if not method or call.method.lower() == method]}


def _faults(bot: BotState) -> dict[str, Any]:
    """Waiting faults and blocked chats."""
    return {"faults": bot.faults.to_json(), "blocked_chats": sorted(bot.blocked_chats)}


async def list_faults(request: web.Request, bot: BotState) -> dict[str, Any]:
    """What will go wrong next."""
    return _faults(bot)


async def add_fault(request: web.Request, bot: BotState) -> dict[str, Any]:
    """Make the next calls of a method fail or wait, or mark a chat as having blocked the bot."""
    body = await _json_body(request)
    if "chat_id" in body:
        chat_id = _integer(body, "chat_id")
        if body.get("blocked", True):
            bot.blocked_chats.add(chat_id)
        else:
            bot.blocked_chats.discard(chat_id)
        return _faults(bot)
    method = body.get("method")
    if not isinstance(method, str) or not method:
        raise RequestError(400, 'give "method" (with "status" and/or "delay") or "chat_id" with "blocked"')
    fault = Fault(
        method=method,
        count=_integer(body, "count", 1),
        status=_integer(body, "status") if body.get("status") is not None else None,
        retry_after=_integer(body, "retry_after") if body.get("retry_after") is not None else None,
        delay=_seconds(body, "delay"),
        description=str(body["description"]) if body.get("description") else None,
    )
    if fault.status is None and fault.delay <= 0:
        raise RequestError(400, 'a fault needs a "status" or a positive "delay"')
    if fault.status is not None and not 400 <= fault.status <= 599:
        raise RequestError(400, '"status" must be an HTTP error status (400-599)')
    if fault.count < 1:
        raise RequestError(400, '"count" must be at least 1')
    bot.faults.add(fault)
    return _faults(bot)


def _integer(body: dict[str, Any], name: str, default: int | None = None) -> int:
    """A whole-number field of a test API body."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise RequestError(400, f'"{name}" must be an integer')
    try:
        return int(value)
    except ValueError:
        raise RequestError(400, f'"{name}" must be an integer') from None


def _seconds(body: dict[str, Any], name: str) -> float:
    """A duration field of a test API body; absent means zero."""
    value = body.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RequestError(400, f'"{name}" must be a number of seconds')
    try:
        return float(value)
    except ValueError:
        raise RequestError(400, f'"{name}" must be a number of seconds') from None


async def clear_faults(request: web.Request, bot: BotState) -> dict[str, Any]:
    """Forget every waiting fault and unblock every chat."""
    bot.faults.clear()
    bot.blocked_chats.clear()
    return _faults(bot)


async def reset(request: web.Request, bot: BotState) -> dict[str, Any]:
    """Forget the bot's chats, updates, files, webhook, faults and call log (update ids keep growing)."""
    bot.reset()
    return {"ok": True}
