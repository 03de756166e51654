"""The outbox relay: sends committed replies through a :class:`Sender`, in order per chat, within its rate limits."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from durabot.backoff import Backoff
from durabot.clock import Clock, utc_now
from durabot.failpoints import failpoint
from durabot.observe import BaseObserver, Observer, Wakeups
from durabot.outbox import OutboxItem, OutboxQueue, OutboxUnavailableError
from durabot.replies import CallbackAnswer, Document, Photo, Reply
from durabot.transport.rate_limits import RateLimits
from durabot.transport.sender import FloodControlError, Sender, SendError, TransientSendError
from durabot.transport.telegram import split_text
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.relay")

MAX_ATTEMPTS = 15
"""Claims of one message before it is given up on (about an hour of backed-off retries)."""

LEASE = timedelta(seconds=10)
"""How long a claim lasts unless renewed: a relay that dies holds its chats back at most this long."""

RECORD_AFTER_STOP_SECONDS = 5.0
"""How long a stopping relay keeps trying to record a delivery that the database did not take."""

RETRY_LATER_CAP = timedelta(minutes=5)
"""The longest pause before a message that kept failing transiently is claimed again."""


def describe(error: BaseException) -> str:
    """A log-safe description of an error: what the queue or sender says (they never include message text)."""
    return str(error) if isinstance(error, OutboxUnavailableError) else type(error).__name__


class OutboxRelay:
    """Claims outbox rows and sends them; several relays may share one PostgreSQL database.

    Args:
        queue: Where messages are claimed from and reported back to.
        sender: Where messages go out.
        clock: Where the relay reads the time.
        limits: Telegram's rate limits, shared by every send of this relay.
        lease: How long a claim lasts unless renewed; renewed every third of it while sending.
        batch: At most this many rows (one per chat) per claim.
        quick_retries: Attempts of one call before a network error or 5xx is left for later.
        quick_retry_pause: Scale of the random pause between those attempts, in seconds (0 in tests).
        stop: Set when the relay should stop (or call :meth:`stop`); it then only finishes recording what it sent.
        observer: Told of each delivery and each failure.
        wakeups: Their ``outbox`` event says new rows were committed in this process (see :meth:`run`).
    """

    def __init__(
        self,
        queue: OutboxQueue,
        sender: Sender,
        clock: Clock = utc_now,
        limits: RateLimits | None = None,
        lease: timedelta = LEASE,
        batch: int = 50,
        quick_retries: int = 3,
        quick_retry_pause: float = 0.25,
        stop: asyncio.Event | None = None,
        observer: Observer | None = None,
        wakeups: Wakeups | None = None,
    ) -> None:
        self._queue = queue
        self._sender = sender
        self._clock = clock
        self._limits = limits or RateLimits()
        self._lease = lease
        self._batch = batch
        self._quick_retries = quick_retries
        self._quick_retry_pause = quick_retry_pause
        self._stop = stop or asyncio.Event()
        self._observer = observer or BaseObserver()
        self._wakeups = wakeups or Wakeups()

    def stop(self) -> None:
        """Ask :meth:`run` to return once the sends in hand are recorded."""
        self._stop.set()

    async def run(self, idle_seconds: float = 0.5) -> None:
        """Send until stopped; when there is nothing to send, wait ``idle_seconds`` or until the wakeups' outbox is set.

        While the database cannot be reached the relay logs a WARNING and tries again after a
        growing pause; any other failure is logged with its traceback and retried the same way.
        """
        backoff = Backoff(first=0.5, cap=5.0)
        while not self._stop.is_set():
            try:
                sent = await self.relay_once()
            except Exception as error:
                pause = backoff.next()
                if isinstance(error, OutboxUnavailableError):
                    log.warning("relay.database_unavailable", error=str(error), retry_in=pause)
                else:
                    log.exception("relay.failed", retry_in=pause)
                await wait_for_any(self._stop, timeout=pause)
                continue
            backoff.reset()
            if sent == 0:
                wake = self._wakeups.outbox
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
        """Send one row and record the outcome: sent, retry at a time, or dead-lettered with its reason."""
        try:
            await self._deliver(item)
        except FloodControlError as flood:
            wait = flood.retry_after
            log.warning("relay.flood_wait", outbox_id=item.id, chat_id=item.chat_id, seconds=wait.total_seconds())
            await self._queue.retry_at(item.id, self._clock() + wait, str(flood))
            self._observer.send_failed(item.method, gave_up=False)
        except TransientSendError as error:
            await self._retry_later_or_give_up(item, error)
        except Exception as error:  # permanent, undecodable, or unforeseen: retrying cannot help
            await self._dead_letter(item, error)
        else:
            failpoint("relay.after_send")
            await self._record_sent(item)
            self._observer.message_sent(item.method)
        finally:
            in_flight.discard(item.id)

    async def _retry_later_or_give_up(self, item: OutboxItem, error: TransientSendError) -> None:
        if item.attempts >= MAX_ATTEMPTS:
            await self._dead_letter(item, error)
            return
        delay = min(timedelta(seconds=2**item.attempts), RETRY_LATER_CAP)
        log.warning("relay.retry_later", outbox_id=item.id, error=str(error), seconds=delay.total_seconds())
        await self._queue.retry_at(item.id, self._clock() + delay, str(error))
        self._observer.send_failed(item.method, gave_up=False)

    async def _dead_letter(self, item: OutboxItem, error: Exception) -> None:
        reason = str(error) if isinstance(error, SendError) else f"{type(error).__name__}: {error}"
        log.error("relay.dead_letter", outbox_id=item.id, chat_id=item.chat_id, error=reason)
        await self._queue.dead_letter(item.id, reason)
        self._observer.send_failed(item.method, gave_up=True)

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
        """Make the call(s) for one row, retrying network errors and 5xx a few times."""
        message = item.message()
        done: set[int] = set()  # pieces of a split message already sent, kept across quick retries
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientSendError),
            stop=stop_after_attempt(self._quick_retries),
            wait=wait_random_exponential(multiplier=self._quick_retry_pause, max=4),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                match message:
                    case CallbackAnswer():
                        async with self._limits.overall:
                            await self._sender.answer_callback(message)
                    case Document():
                        async with self._limits.chat(item.chat_id), self._limits.overall:
                            await self._sender.send_document(item.chat_id, message)
                    case Photo():
                        async with self._limits.chat(item.chat_id), self._limits.overall:
                            await self._sender.send_photo(item.chat_id, message)
                    case Reply():
                        await self._send_pieces(item.chat_id, message, done)

    async def _send_pieces(self, chat_id: int, reply: Reply, done: set[int]) -> None:
        """Send a reply in pieces of Telegram's length limit, the buttons under the last; skip pieces in ``done``."""
        pieces = split_text(reply.text)
        for index, piece in enumerate(pieces):
            if index in done:
                continue
            buttons = reply.buttons if index == len(pieces) - 1 else ()
            async with self._limits.chat(chat_id), self._limits.overall:
                await self._sender.send_text(chat_id, piece, buttons)
            done.add(index)
