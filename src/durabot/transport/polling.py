"""Long polling that loses nothing: a batch is committed to the inbox before the next offset confirms it."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any

import structlog
from telegram import Bot
from telegram.error import Conflict, InvalidToken
from telegram.warnings import PTBUserWarning

from durabot.engine.events import Event
from durabot.engine.runner import Engine
from durabot.failpoints import failpoint
from durabot.transport.telegram import event_from_update
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.polling")

# The poller calls getUpdates through do_api_request on purpose, to store each update's raw JSON
# and to survive one malformed update in a batch; the library's advice to use get_updates is noted.
warnings.filterwarnings("ignore", message=r".*Bot\.getUpdates.*", category=PTBUserWarning)

ALLOWED_UPDATES = ["message", "callback_query"]


class Poller:
    """Fetches updates with ``getUpdates`` and stores each batch in the inbox.

    The offset — which is what confirms a batch to Telegram — only moves past a batch
    once that batch is committed, so a crash at any moment loses no update; updates
    stored before a crash come again and are recognised by their ``update_id``. The
    first request of a process has no offset: Telegram then resends what it still holds.
    """

    def __init__(
        self,
        bot: Bot,
        engine: Engine,
        on_stored: Callable[[], None] = lambda: None,
        long_poll_seconds: int = 25,
        max_backoff_seconds: float = 30,
    ) -> None:
        self._bot = bot
        self._engine = engine
        self._on_stored = on_stored
        self._long_poll = long_poll_seconds
        self._max_backoff = max_backoff_seconds
        self.offset: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; failures are logged and retried with a growing pause."""
        failures = 0
        while not stop.is_set():
            try:
                await self.poll_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                log.error("polling.invalid_token")
                raise
            except Exception as error:
                failures += 1
                pause = min(self._max_backoff, 0.5 * 2**failures)
                event = "polling.conflict" if isinstance(error, Conflict) else "polling.failed"
                log.warning(event, error=str(error), retry_in=pause)
                await wait_for_any(stop, timeout=pause)

    async def poll_once(self) -> int:
        """One ``getUpdates`` round; returns how many updates were stored as new."""
        params: dict[str, Any] = {"timeout": self._long_poll, "allowed_updates": ALLOWED_UPDATES}
        if self.offset is not None:
            params["offset"] = self.offset
        batch = await self._bot.do_api_request("getUpdates", api_kwargs=params, read_timeout=self._long_poll + 10)
        updates: list[dict[str, Any]] = list(batch) if isinstance(batch, list) else []
        if not updates:
            return 0
        failpoint("polling.after_fetch")
        events: list[Event] = []
        raw: dict[int, Any] = {}
        for update in updates:
            event = event_from_update(update, self._bot)
            if event is not None:
                events.append(event)
                raw[event.update_id] = update
        stored = await self._engine.receive(events, raw) if events else 0
        failpoint("polling.after_store")
        self.offset = max(int(update["update_id"]) for update in updates) + 1
        log.info("polling.batch_stored", received=len(updates), new=stored, next_offset=self.offset)
        if stored:
            self._on_stored()
        return stored
