"""Long polling that loses nothing: a batch is committed to the inbox before the next offset confirms it."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog
from telegram import Bot
from telegram.error import Conflict, InvalidToken
from telegram.warnings import PTBUserWarning

from durabot.backoff import Backoff
from durabot.engine.events import Received
from durabot.engine.runner import Engine
from durabot.failpoints import failpoint
from durabot.observe import BaseObserver, Observer
from durabot.storage.availability import describe, is_unavailable
from durabot.transport.telegram import bot_id_of, known_username
from durabot.transport.updates import read_batch
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.polling")

# The poller calls getUpdates through do_api_request on purpose, to store each update's raw JSON
# and to survive one malformed update in a batch; the library's advice to use get_updates is noted.
warnings.filterwarnings("ignore", message=r".*Bot\.getUpdates.*", category=PTBUserWarning)

ALLOWED_UPDATES = ["message", "callback_query"]

DATABASE_RETRY_SECONDS = 5.0
"""The longest pause before storing a batch is tried again while the database is unreachable."""


UNUSABLE_BATCH_PAUSE_SECONDS = 1.0
"""The pause before asking again when a batch held no update that could be stored (nothing confirms it)."""


class Lease(Protocol):
    """The right to poll, which another process may take over (see :class:`durabot.storage.leader.LeaderLease`)."""

    async def held(self) -> bool:
        """Whether this process still holds it."""

    async def lost(self) -> None:
        """Return once it is lost."""


class Poller:
    """Fetches updates with ``getUpdates`` and stores each batch in the inbox.

    The offset — which is what confirms a batch to Telegram — only moves past a batch
    once that batch is committed, so a crash at any moment loses no update; updates
    stored before a crash come again and are recognised by their ``update_id``. The
    first request of a process has no offset: Telegram then resends what it still holds.

    Args:
        bot: The Bot API client to poll with.
        engine: Stores (and where it can, applies) each batch.
        observer: Told of every stored batch (:meth:`~durabot.observe.Observer.updates_stored`).
        not_saved: Called with a batch that could not be stored because the database (or the
            outage journal) is unavailable; the batch is not confirmed either way.
        long_poll_seconds: How long one ``getUpdates`` waits for updates.
        max_backoff_seconds: The longest pause after failures.
    """

    def __init__(
        self,
        bot: Bot,
        engine: Engine,
        observer: Observer | None = None,
        long_poll_seconds: int = 25,
        max_backoff_seconds: float = 30,
        not_saved: Callable[[Sequence[Received]], Awaitable[None]] | None = None,
    ) -> None:
        self._bot = bot
        self._engine = engine
        self._observer = observer or BaseObserver()
        self._long_poll = long_poll_seconds
        self._max_backoff = max_backoff_seconds
        self._not_saved = not_saved
        self.offset: int | None = None

    async def run(self, stop: asyncio.Event, lease: Lease | None = None) -> None:
        """Poll until ``stop`` is set or ``lease`` is lost; failures are logged and retried with a growing pause.

        The lease is checked before every ``getUpdates`` and watched while one is in flight: a
        poller that lost it returns at once (abandoning the request in flight, whose batch is
        not confirmed), so the process that takes over never polls alongside it.
        """
        backoff = Backoff(first=0.5, cap=self._max_backoff)
        while not stop.is_set():
            if lease is not None and not await lease.held():
                log.warning("polling.lease_lost")
                return
            try:
                if not await self._poll_while_held(lease):
                    log.warning("polling.lease_lost")
                    return
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                log.error("polling.invalid_token")
                raise
            except Exception as error:
                pause = backoff.next()
                if is_unavailable(error):
                    pause = min(pause, DATABASE_RETRY_SECONDS)
                    log.warning("polling.database_unavailable", error=describe(error), retry_in=pause)
                else:
                    event = "polling.conflict" if isinstance(error, Conflict) else "polling.failed"
                    log.warning(event, error=str(error), retry_in=pause)
                await wait_for_any(stop, timeout=pause)

    async def _poll_while_held(self, lease: Lease | None) -> bool:
        """One :meth:`poll_once`, abandoned if the lease goes meanwhile; returns whether it went its course."""
        if lease is None:
            await self.poll_once()
            return True
        poll, watch = asyncio.ensure_future(self.poll_once()), asyncio.ensure_future(lease.lost())
        try:
            await asyncio.wait({poll, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            if not poll.done():
                poll.cancel()
            await asyncio.gather(poll, watch, return_exceptions=True)
        if poll.cancelled():
            return False
        poll.result()
        return True

    async def poll_once(self) -> int:
        """One ``getUpdates`` round; returns how many updates were stored as new.

        Every update with a usable ``update_id`` is stored — as an event, or as ignored with its
        reason — and the offset moves past the highest of them, so the whole batch is confirmed;
        one without a usable id cannot be stored and is skipped with a warning.
        """
        params: dict[str, Any] = {"timeout": self._long_poll, "allowed_updates": ALLOWED_UPDATES}
        if self.offset is not None:
            params["offset"] = self.offset
        batch = await self._bot.do_api_request("getUpdates", api_kwargs=params, read_timeout=self._long_poll + 10)
        if not isinstance(batch, list):
            log.warning("polling.batch_not_a_list", shape=type(batch).__name__)
            return 0
        if not batch:
            return 0
        failpoint("polling.after_fetch")
        items, raw = read_batch(batch, bot_id_of(self._bot.token), known_username(self._bot))
        if not items:  # nothing to move the offset past: Telegram answers the same at once, so don't spin
            await asyncio.sleep(UNUSABLE_BATCH_PAUSE_SECONDS)
            return 0
        try:
            intake = await self._engine.take_in(items, raw)
        except Exception as error:
            if self._not_saved is not None and is_unavailable(error):
                await self._not_saved(items)
            raise
        failpoint("polling.after_store")
        self.offset = max(item.update_id for item in items) + 1
        log.info(
            "polling.batch_stored", received=len(batch), new=intake.new, waiting=intake.waiting, next_offset=self.offset
        )
        self._observer.updates_stored(intake.new, intake.waiting)
        return intake.new

