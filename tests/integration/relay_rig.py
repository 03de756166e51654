"""A relay's surroundings for tests: an in-process sandbox to send to, and replies queued through the outbox port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from telegram import Bot

from durabot.clock import Clock
from durabot.replies import Reply
from durabot.sandbox import Sandbox, SandboxClient
from durabot.storage.database import Database
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from durabot.transport.telegram import make_bot
from durabot.transport.telegram_sender import TelegramSender

TOKEN = "555001:relay-rig"


@dataclass
class RelayRig:
    """A Bot API client pointed at a sandbox, the relay's sender on it, and the sandbox's test API."""

    bot: Bot
    sandbox: SandboxClient

    @property
    def sender(self) -> TelegramSender:
        """What a relay sends through: python-telegram-bot on the sandbox."""
        return TelegramSender(self.bot)

    async def delivered(self, chat_id: int) -> list[str]:
        """The texts the sandbox received for ``chat_id``, in order, duplicates included."""
        return [message["text"] for message in await self.sandbox.bot_messages(chat_id)]


@contextlib.asynccontextmanager
async def relay_rig() -> AsyncIterator[RelayRig]:
    async with Sandbox() as sandbox:
        bot = make_bot(TOKEN, sandbox.url)
        await bot.initialize()
        try:
            async with SandboxClient(sandbox.url, TOKEN) as client:
                yield RelayRig(bot, client)
        finally:
            await bot.shutdown()


async def queue_replies(database: Database, chat_id: int, texts: Sequence[str], clock: Clock) -> None:
    """Commit ``texts`` to the chat's outbox, as a step would."""
    async with SqlAlchemyUnitOfWorkFactory(database, clock)() as uow:
        await uow.outbox.add(chat_id, [Reply(text) for text in texts], None, clock())
        await uow.commit()
