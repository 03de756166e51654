"""The :class:`~durabot.transport.sender.Sender` on python-telegram-bot: Bot API calls, and their errors translated."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from durabot.replies import Button, CallbackAnswer, Document, Photo
from durabot.transport.sender import Buttons, FloodControlError, PermanentSendError, SendError, TransientSendError


class TelegramSender:
    """Sends through a python-telegram-bot :class:`~telegram.Bot` (initialised by its owner).

    Every failure that python-telegram-bot reports is raised as a :class:`SendError`: a 429 as
    :class:`FloodControlError`, 400 and 403 (and a migrated group) as :class:`PermanentSendError`,
    anything else from the network or the server as :class:`TransientSendError`.
    """

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send_text(self, chat_id: int, text: str, buttons: Buttons = ()) -> None:
        with _translated_errors():
            await self._bot.send_message(chat_id, text, reply_markup=inline_keyboard(buttons))

    async def send_document(self, chat_id: int, document: Document) -> None:
        upload = InputFile(document.content.encode("utf-8", "replace"), filename=document.filename)
        with _translated_errors():
            await self._bot.send_document(chat_id, upload, caption=document.caption)

    async def send_photo(self, chat_id: int, photo: Photo) -> None:
        with _translated_errors():
            await self._bot.send_photo(chat_id, photo.file_id, caption=photo.caption)

    async def answer_callback(self, answer: CallbackAnswer) -> None:
        with _translated_errors():
            await self._bot.answer_callback_query(answer.callback_id, text=answer.text)


def inline_keyboard(rows: Buttons) -> InlineKeyboardMarkup | None:
    """The inline keyboard for button rows (``None`` when there is no button)."""
    markup = [[_inline_button(button) for button in row] for row in rows if row]
    return InlineKeyboardMarkup(markup) if markup else None


def _inline_button(button: Button) -> InlineKeyboardButton:
    if button.url:
        return InlineKeyboardButton(button.label, url=button.url)
    return InlineKeyboardButton(button.label, callback_data=button.data)


def send_error(error: TelegramError | OSError) -> SendError:
    """What a python-telegram-bot or network error means to the relay."""
    name, text = type(error).__name__, str(error)
    description = text if text.startswith(f"{name}:") else f"{name}: {text}"  # Telegram's own text may name it already
    if isinstance(error, RetryAfter):
        with warnings.catch_warnings():  # seconds today, a timedelta in python-telegram-bot 23: both are read
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            wait = error.retry_after
        return FloodControlError(wait if isinstance(wait, timedelta) else timedelta(seconds=wait), str(error))
    if isinstance(error, BadRequest | Forbidden | ChatMigrated):  # BadRequest before NetworkError: it is one
        return PermanentSendError(description)
    return TransientSendError(description)


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except (TelegramError, OSError) as error:
        raise send_error(error) from error
