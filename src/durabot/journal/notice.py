"""When even the journal cannot write: a best-effort word to the user that their message was not taken in.

The update is not confirmed (Telegram keeps it and delivers it again), so nothing is lost; the
notice only spares the user from waiting for an answer. It is sent straight to the Bot API —
there is nowhere to queue it — at most once a minute per chat, and never says anything was saved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import structlog
from telegram import Bot

from durabot.engine.events import Event, Received

log = structlog.get_logger("durabot.journal")

NOT_SAVED = (
    "I can't save anything right now, so I haven't taken in your last message. "
    "Please send it again in a minute."
)
QUIET_SECONDS = 60.0
"""At most one notice per chat in this long."""

SEND_TIMEOUT_SECONDS = 5.0


class NotSavedNotice:
    """Tells the chats of a batch that could not be stored anywhere, while outage mode is engaged.

    Args:
        bot: Sends the notice.
        engaged: Whether outage mode is engaged (during the grace period nothing is said: it is short).
    """

    def __init__(self, bot: Bot, engaged: Callable[[], bool], clock: Callable[[], float] = time.monotonic) -> None:
        self._bot = bot
        self._engaged = engaged
        self._clock = clock
        self._told: dict[int, float] = {}

    async def __call__(self, items: Sequence[Received]) -> None:
        if not self._engaged():
            return
        now = self._clock()
        chats = {item.chat_id for item in items if isinstance(item, Event)}
        due = [chat for chat in chats if now - self._told.get(chat, -QUIET_SECONDS) >= QUIET_SECONDS]
        for chat in due:
            self._told[chat] = now
        await asyncio.gather(*(self._tell(chat) for chat in due))

    async def _tell(self, chat_id: int) -> None:
        try:
            await asyncio.wait_for(self._bot.send_message(chat_id, NOT_SAVED), SEND_TIMEOUT_SECONDS)
            log.warning("journal.not_saved_notice", chat_id=chat_id)
        except Exception as error:
            log.warning("journal.not_saved_notice_failed", chat_id=chat_id, error=type(error).__name__)
