"""The outbox relay: sends committed replies to Telegram in order per chat, within its rate limits."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from aiolimiter import AsyncLimiter
from telegram import Bot, InputFile
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from durabot.backoff import Backoff
from durabot.engine.runner import Clock, utc_now
from durabot.failpoints import failpoint
from durabot.replies import CALLBACK_ANSWER_METHOD, DOCUMENT_METHOD, MESSAGE_METHOD
from durabot.storage.availability import describe, is_unavailable
from durabot.storage.outbox_queue import OutboxItem
from durabot.transport.telegram import keyboard, split_text
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.relay")

MAX_ATTEMPTS = 15
"""Claims of one message before it is given up on (about an hour of backed-off retries)."""

LEASE = timedelta(seconds=10)
"""How long a claim lasts unless renewed: a relay that dies holds its chats back at most this long."""

RECORD_AFTER_STOP_SECONDS = 5.0
"""How long a stopping relay keeps trying to record a delivery that the database did not take."""


class OutboxQueue(Protocol):
    """Where the relay takes messages from and reports back to."""

    async def claim(self, limit: int, lease: timedelta) -> list[OutboxItem]: ...

    async def extend_lease(self, item_ids: Sequence[int], lease: timedelta) -> None: ...

    async def mark_sent(self, item_id: int) -> None: ...

    async def retry_at(self, item_id: int, when: datetime, error: str) -> None: ...

    async def dead_letter(self, item_id: int, error: str) -> None: ...


def is_permanent(error: BaseException) -> bool:
    """Errors that no retry can fix: the user blocked the bot, or Telegram rejected the request."""
    return isinstance(error, BadRequest | Forbidden | ChatMigrated)


def is_transient(error: BaseException) -> bool:
    """Network trouble and 5xx answers: worth a quick retry."""
    return isinstance(error, TelegramError | OSError) and not is_permanent(error) and not isinstance(error, RetryAfter)


class RateLimits:
    """About one message per second per private chat, 20 a minute per group, 30 a second overall."""

    def __init__(self, overall_per_second: float = 30, chat_per_second: float = 1, remembered_chats: int = 10_000):
        self.overall = AsyncLimiter(overall_per_second, 1)
        self._chat_per_second = chat_per_second
        self._chats: collections.OrderedDict[int, AsyncLimiter] = collections.OrderedDict()
        self._remembered = remembered_chats

    def chat(self, chat_id: int) -> AsyncLimiter:
        """The limiter of one chat (groups have negative ids and a per-minute limit)."""
        limiter = self._chats.pop(chat_id, None)
        if limiter is None:
            limiter = AsyncLimiter(20, 60) if chat_id < 0 else AsyncLimiter(1, 1 / self._chat_per_second)
        self._chats[chat_id] = limiter
        while len(self._chats) > self._remembered:
            self._chats.popitem(last=False)
        return limiter


class OutboxRelay:
    """Claims outbox rows and sends them; several relays may share one PostgreSQL database.

    Args:
        queue: Where messages are claimed from and reported back to.
        bot: The Bot API client.
        clock: Where the relay reads the time.
        limits: Telegram's rate limits, shared by every send of this relay.
        lease: How long a claim lasts unless renewed; renewed every third of it while sending.
        batch: At most this many rows (one per chat) per claim.
        quick_retries: Attempts of one call before a network error or 5xx is left for later.
        stop: Set when the relay should stop; it then only finishes recording what it sent.
    """

    def __init__(
        self,
        queue: OutboxQueue,
        bot: Bot,
        clock: Clock = utc_now,
        limits: RateLimits | None = None,
        lease: timedelta = LEASE,
        batch: int = 50,
        quick_retries: int = 3,
        stop: asyncio.Event | None = None,
    ) -> None:
        self._queue = queue
        self._bot = bot
        self._clock = clock
        self._limits = limits or RateLimits()
        self._lease = lease
        self._batch = batch
        self._quick_retries = quick_retries
        self._stop = stop or asyncio.Event()

    async def run(self, wake: asyncio.Event, idle_seconds: float = 0.5) -> None:
        """Send until ``stop`` is set; ``wake`` says new rows were committed in this process.

        While the database cannot be reached the relay logs a WARNING and tries again after a
        growing pause; any other failure is logged with its traceback and retried the same way.
        """
        backoff = Backoff(first=0.5, cap=5.0)
        while not self._stop.is_set():
            try:
                sent = await self.relay_once()
            except Exception as error:
                pause = backoff.next()
                if is_unavailable(error):
                    log.warning("relay.database_unavailable", error=describe(error), retry_in=pause)
                else:
                    log.exception("relay.failed", retry_in=pause)
                await wait_for_any(self._stop, timeout=pause)
                continue
            backoff.reset()
            if sent == 0:
                wake.clear()
                await wait_for_any(self._stop, wake, timeout=idle_seconds)

    async def relay_once(self) -> int:
        """Claim one batch (one row per chat) and send it; returns how many rows were handled.

        The batch's claims are renewed while its messages are being sent, so a slow send keeps
        its row, and a relay that dies lets its rows go after one short lease.
        """
        items = await self._queue.claim(self._batch, self._lease)
        if not items:
            return 0
        in_flight = {item.id for item in items}
        renewer = asyncio.create_task(self._renew(in_flight))
        try:
            outcomes = await asyncio.gather(*(self._send(item, in_flight) for item in items), return_exceptions=True)
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
        failure = next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)
        if failure is not None:
            raise failure
        return len(items)

    async def flush(self, seconds: float) -> None:
        """Send what is due for up to ``seconds`` (on shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            try:
                if await asyncio.wait_for(self.relay_once(), max(0.1, deadline - loop.time())) == 0:
                    return
            except TimeoutError:
                return

    async def _renew(self, in_flight: set[int]) -> None:
        """Every third of a lease, extend the claims of the rows still being sent."""
        every = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                await self._queue.extend_lease(sorted(in_flight), self._lease)
            except Exception as error:
                log.warning("relay.lease_renewal_failed", rows=len(in_flight), error=describe(error))

    async def _send(self, item: OutboxItem, in_flight: set[int]) -> None:
        try:
            await self._deliver(item)
        except RetryAfter as flood:
            wait = flood.retry_after if isinstance(flood.retry_after, timedelta) else timedelta(seconds=flood.retry_after)
            log.warning("relay.flood_wait", outbox_id=item.id, chat_id=item.chat_id, seconds=wait.total_seconds())
            await self._queue.retry_at(item.id, self._clock() + wait, str(flood))
        except Exception as error:
            if is_permanent(error) or item.attempts >= MAX_ATTEMPTS or not is_transient(error):
                log.error("relay.dead_letter", outbox_id=item.id, chat_id=item.chat_id, error=str(error))
                await self._queue.dead_letter(item.id, f"{type(error).__name__}: {error}")
            else:
                delay = timedelta(seconds=min(2**item.attempts, 300))
                log.warning("relay.retry_later", outbox_id=item.id, error=str(error), seconds=delay.total_seconds())
                await self._queue.retry_at(item.id, self._clock() + delay, f"{type(error).__name__}: {error}")
        else:
            failpoint("relay.after_send")
            await self._record_sent(item)
        finally:
            in_flight.discard(item.id)

    async def _record_sent(self, item: OutboxItem) -> None:
        """Record a delivery, retrying until the database takes it, so the message is not sent again.

        Bounded only by ``stop``: once stopping, it keeps trying for :data:`RECORD_AFTER_STOP_SECONDS`,
        then gives up, and the row is sent again after its lease (at least once, never lost).
        """
        loop = asyncio.get_running_loop()
        backoff = Backoff(first=0.1, cap=2.0)
        give_up_at: float | None = None
        while True:
            try:
                await self._queue.mark_sent(item.id)
                return
            except Exception as error:
                if self._stop.is_set():
                    give_up_at = give_up_at or loop.time() + RECORD_AFTER_STOP_SECONDS
                    if loop.time() >= give_up_at:
                        log.error("relay.mark_sent_abandoned", outbox_id=item.id, error=describe(error))
                        return
                pause = backoff.next()
                log.warning(
                    "relay.mark_sent_failed",
                    outbox_id=item.id,
                    attempt=backoff.failures,
                    retry_in=pause,
                    error=describe(error),
                )
                await asyncio.sleep(pause)

    async def _deliver(self, item: OutboxItem) -> None:
        """Make the Bot API call(s) for one row, retrying network errors and 5xx a few times."""
        done: list[int] = []  # pieces of a split message already sent, kept across quick retries
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self._quick_retries),
            wait=wait_random_exponential(multiplier=0.25, max=4),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._call(item, done)

    async def _call(self, item: OutboxItem, done: list[int]) -> None:
        payload = item.payload
        if item.method == CALLBACK_ANSWER_METHOD:
            async with self._limits.overall:
                await self._bot.answer_callback_query(payload["callback_id"], text=payload.get("text"))
            return
        if item.method == DOCUMENT_METHOD:
            document = InputFile(payload["content"].encode("utf-8", "replace"), filename=payload["filename"])
            async with self._limits.chat(item.chat_id), self._limits.overall:
                await self._bot.send_document(item.chat_id, document, caption=payload.get("caption"))
            return
        if item.method != MESSAGE_METHOD:
            raise BadRequest(f"unknown outbox method {item.method!r}")
        pieces = split_text(payload["text"])
        for index, piece in enumerate(pieces):
            if index in done:
                continue
            markup = keyboard(payload.get("buttons", [])) if index == len(pieces) - 1 else None
            async with self._limits.chat(item.chat_id), self._limits.overall:
                await self._bot.send_message(item.chat_id, piece, reply_markup=markup)
            done.append(index)
