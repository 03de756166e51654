"""The Bot API methods that talk in chats: messages, edits, photos, documents, files and button answers."""

from __future__ import annotations

import copy
import time
from pathlib import PurePosixPath
from typing import Any

from durabot.sandbox.errors import bad_request
from durabot.sandbox.markup import caption_text, inline_keyboard, message_text, reply_markup
from durabot.sandbox.files import StoredFile
from durabot.sandbox.params import Params, Upload
from durabot.sandbox.state import BotState, Chat, StoredMessage, now

QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same"
    " as a current content and reply markup of the message"
)


def _chat(bot: BotState, params: Params) -> Chat:
    """The chat a call addresses; any chat id works unless the test API marked it as blocking the bot."""
    chat_id = params.integer("chat_id", error="chat not found")
    if chat_id is None:
        raise bad_request("chat_id is empty")
    bot.ensure_not_blocked(chat_id)
    return bot.chat(chat_id)


def _replied_message(chat: Chat, params: Params) -> dict[str, Any] | None:
    """The message being replied to, from ``reply_to_message_id`` or ``reply_parameters``."""
    reply_id = params.integer("reply_to_message_id")
    allow_missing = params.flag("allow_sending_without_reply")
    reply_parameters = params.json("reply_parameters")
    if isinstance(reply_parameters, dict) and reply_parameters.get("message_id") is not None:
        reply_id = int(reply_parameters["message_id"])
        allow_missing = allow_missing or bool(reply_parameters.get("allow_sending_without_reply"))
    if reply_id is None:
        return None
    stored = chat.messages.get(reply_id)
    if stored is None:
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")
    replied = copy.deepcopy(stored.message)
    replied.pop("reply_to_message", None)
    return replied


def _send(bot: BotState, chat: Chat, content: dict[str, Any], params: Params) -> dict[str, Any]:
    """Check the common parameters, store a new bot message with ``content`` and return it."""
    markup = reply_markup(params.json("reply_markup", error="can't parse reply keyboard markup JSON object"))
    replied = _replied_message(chat, params)
    message: dict[str, Any] = {
        "message_id": chat.new_message_id(),
        "from": bot.user,
        "chat": chat.describe(),
        "date": now(),
        **content,
    }
    if replied is not None:
        message["reply_to_message"] = replied
    keyboard = inline_keyboard(markup)
    if keyboard is not None:
        message["reply_markup"] = keyboard
    chat.add(StoredMessage(message, from_bot=True, markup=markup))
    return copy.deepcopy(message)


async def send_message(bot: BotState, params: Params) -> dict[str, Any]:
    """Send a text message (1–4096 characters after trimming and HTML parsing)."""
    chat = _chat(bot, params)
    text = message_text(params.text("text"), params.text("parse_mode"))
    return _send(bot, chat, {"text": text}, params)


async def send_photo(bot: BotState, params: Params) -> dict[str, Any]:
    """Send a photo uploaded in the request or given by the ``file_id`` of a stored one."""
    chat = _chat(bot, params)
    stored_file, _ = _file_of(bot, params, "photo", "photos", "jpg")
    return _send(bot, chat, _with_caption({"photo": [stored_file.photo_size()]}, params), params)


async def send_document(bot: BotState, params: Params) -> dict[str, Any]:
    """Send a file uploaded in the request or given by the ``file_id`` of a stored one."""
    chat = _chat(bot, params)
    stored_file, upload = _file_of(bot, params, "document", "documents", "bin")
    if upload is not None:
        filename, mime_type = upload.filename, upload.content_type
    else:
        filename, mime_type = PurePosixPath(stored_file.file_path).name, "application/octet-stream"
    document = {
        "file_id": stored_file.file_id,
        "file_unique_id": stored_file.file_unique_id,
        "file_name": filename,
        "mime_type": mime_type,
        "file_size": len(stored_file.data),
    }
    return _send(bot, chat, _with_caption({"document": document}, params), params)


def _file_of(bot: BotState, params: Params, field: str, folder: str, extension: str) -> tuple[StoredFile, Upload | None]:
    """The file a send method carries in ``field``: uploaded with the request (stored now) or a stored one's id."""
    upload = params.upload(field)
    if upload is not None:
        if not upload.data:
            raise bad_request("file must be non-empty")
        suffix = PurePosixPath(upload.filename).suffix.lstrip(".").lower() or extension
        return bot.files.add(upload.data, folder, suffix), upload
    if field in params:
        return bot.files.get(params.text(field) or ""), None
    raise bad_request(f"there is no {field} in the request")


def _with_caption(content: dict[str, Any], params: Params) -> dict[str, Any]:
    """``content`` with the request's caption, if it has one."""
    caption = caption_text(params.text("caption"), params.text("parse_mode"))
    return {**content, "caption": caption} if caption is not None else content


def _editable(bot: BotState, params: Params) -> StoredMessage:
    """The bot message an edit addresses."""
    if "inline_message_id" in params:
        raise bad_request("inline messages are not supported by the sandbox")
    chat = _chat(bot, params)
    message_id = params.integer("message_id", error="message to edit not found")
    stored = chat.messages.get(message_id) if message_id is not None else None
    if stored is None:
        raise bad_request("message to edit not found")
    if not stored.from_bot:
        raise bad_request("message can't be edited")
    return stored


def _edit(stored: StoredMessage, changes: dict[str, Any], markup: Any) -> dict[str, Any]:
    """Apply an edit, keeping the earlier version; an edit without an inline keyboard removes it."""
    keyboard = inline_keyboard(markup)
    current = stored.message
    if all(current.get(key) == value for key, value in changes.items()) and current.get("reply_markup") == keyboard:
        raise bad_request(NOT_MODIFIED)
    stored.history.append(copy.deepcopy(current))
    current.update(changes)
    current["edit_date"] = now()
    current.pop("reply_markup", None)
    if keyboard is not None:
        current["reply_markup"] = keyboard
    stored.markup = markup
    return copy.deepcopy(current)


async def edit_message_text(bot: BotState, params: Params) -> dict[str, Any]:
    """Replace the text (and the inline keyboard) of a bot message."""
    stored = _editable(bot, params)
    if "text" not in stored.message:
        raise bad_request("there is no text in the message to edit")
    text = message_text(params.text("text"), params.text("parse_mode"))
    markup = reply_markup(params.json("reply_markup", error="can't parse reply keyboard markup JSON object"))
    return _edit(stored, {"text": text}, markup)


async def edit_message_reply_markup(bot: BotState, params: Params) -> dict[str, Any]:
    """Replace or remove the inline keyboard of a bot message."""
    stored = _editable(bot, params)
    markup = reply_markup(params.json("reply_markup", error="can't parse reply keyboard markup JSON object"))
    return _edit(stored, {}, markup)


async def delete_message(bot: BotState, params: Params) -> bool:
    """Remove a message from its chat."""
    chat = _chat(bot, params)
    message_id = params.integer("message_id", error="message to delete not found")
    if message_id not in chat.messages:
        raise bad_request("message to delete not found")
    del chat.messages[message_id]
    return True


async def send_chat_action(bot: BotState, params: Params) -> bool:
    """Show "typing…" and the like; the sandbox only checks the chat."""
    _chat(bot, params)
    return True


async def answer_callback_query(bot: BotState, params: Params) -> bool:
    """Acknowledge a button press once; a second answer, or an unknown id, is refused."""
    query = bot.callback_queries.get(params.text("callback_query_id") or "")
    if query is None or query.answered:
        raise bad_request(QUERY_INVALID)
    query.answered = True
    bot.callback_answers.append(
        {
            "callback_query_id": query.query_id,
            "chat_id": query.chat_id,
            "message_id": query.message_id,
            "text": params.text("text"),
            "show_alert": params.flag("show_alert"),
            "url": params.text("url"),
            "cache_time": params.integer("cache_time") or 0,
            "at": time.monotonic(),
        }
    )
    return True


async def get_file(bot: BotState, params: Params) -> dict[str, Any]:
    """A stored file's ``File`` object, with the path to download it from (files up to 20 MB)."""
    if "file_id" not in params:
        raise bad_request("file_id not specified")
    return bot.files.for_download(params.text("file_id") or "").file_info()
