"""Machine photos for the console: Telegram keeps the image, the bot fetches it by its file id (``getFile``)."""

from __future__ import annotations

import asyncio

import structlog
from telegram import Bot
from telegram.error import TelegramError

log = structlog.get_logger("durabot.console")

MAX_PHOTO_BYTES = 20 * 1024 * 1024
"""The Bot API hands out files up to this size."""

FETCH_TIMEOUT_SECONDS = 15.0
CONTENT_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


class TelegramPhotos:
    """Fetches a photo's bytes through ``bot``, once the service has connected one (``None`` until then)."""

    def __init__(self, bot: Bot | None = None) -> None:
        self.bot = bot

    async def fetch(self, file_id: str) -> tuple[bytes, str] | None:
        """The photo's bytes and content type, or ``None`` if there is no bot or Telegram will not give it."""
        bot = self.bot
        if bot is None:
            return None
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
                await bot.initialize()  # at once if the service has already (durabot console alone does it here)
                file = await bot.get_file(file_id)
                if file.file_size is not None and file.file_size > MAX_PHOTO_BYTES:
                    return None
                data = bytes(await file.download_as_bytearray())
        except (TelegramError, TimeoutError, OSError) as error:
            log.warning("console.photo_unavailable", error=type(error).__name__)
            return None
        extension = (file.file_path or "").rsplit(".", 1)[-1].lower()
        return data, CONTENT_TYPES.get(extension, "image/jpeg")
