"""The engine: stores incoming events in the inbox, then applies each in its own transaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from durabot.clock import Clock as Clock  # re-exported until transport.relay and storage.outbox_queue move
from durabot.clock import utc_now as utc_now
from durabot.engine.conversation import TOMBSTONE_RETENTION
from durabot.engine.dispatch import Dispatcher
from durabot.engine.events import Event, EventKind, Received
from durabot.engine.ports import PendingUpdate, UnitOfWorkFactory
from durabot.engine.registry import Registry
from durabot.failpoints import failpoint
from durabot.redaction import redact
from durabot.replies import CallbackAnswer, Outgoing, Reply

log = structlog.get_logger("durabot.engine")

APPLIED = "applied"
FAILED = "failed"
APOLOGY = (
    "Sorry — something went wrong while handling your last message, and nothing from it was saved. "
    "Your earlier answers are safe. Please send it again."
)

INBOX_RETENTION = timedelta(days=7)
"""How long an applied update's id is kept to recognise a redelivery (Telegram retries for 24 h at most)."""

TEXT_RETENTION = timedelta(hours=48)
"""How long what users wrote and what the bot sent is kept in the inbox and outbox once dealt with."""

@dataclass(frozen=True)
class Applied:
    """An update the engine has dealt with: how it ended and what it queued for sending."""

    update_id: int
    outcome: str
    outgoing: tuple[Outgoing, ...]


class Engine:
    """Applies each update exactly once, one transaction per update, per chat in ``update_id`` order.

    Args:
        uow_factory: Opens the transactions every step runs in.
        registry: The flows, commands and buttons the bot understands.
        ttl: How long an untouched conversation lives.
        clock: Where the engine reads the time.
        attempts: How many times a step that clashed with concurrent work is tried.
        text_retention: How long the content of handled updates and sent replies is kept.
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        registry: Registry,
        ttl: timedelta = timedelta(hours=24),
        clock: Clock = utc_now,
        attempts: int = 3,
        text_retention: timedelta = TEXT_RETENTION,
    ) -> None:
        self._uow_factory = uow_factory
        self._dispatcher = Dispatcher(registry, ttl)
        self._clock = clock
        self._attempts = attempts
        self._text_retention = text_retention
        self.on_applied: Callable[[Applied], None] = lambda applied: None
        """Called after each update is committed (the service uses it to wake the relay)."""

    async def receive(self, items: Sequence[Received], raw: Mapping[int, Any] | None = None) -> int:
        """Store ``items`` in the inbox in one transaction (``raw``: their JSON by update id); returns how many were new."""
        async with self._uow_factory() as uow:
            added = await uow.inbox.add(items, self._clock(), raw)
            await uow.commit()
        return added

    async def handle(self, event: Event) -> list[Applied]:
        """Receive one event and apply everything pending in its chat, this event included."""
        await self.receive([event])
        return await self.process_chat(event.chat_id)

    async def process_chat(self, chat_id: int, stop: asyncio.Event | None = None) -> list[Applied]:
        """Apply the chat's pending updates in ``update_id`` order until none is left (or ``stop`` is set)."""
        applied: list[Applied] = []
        while not (stop and stop.is_set()) and (result := await self._apply_next(chat_id)) is not None:
            applied.append(result)
            self.on_applied(result)
        return applied

    async def process_pending(self, concurrency: int = 4, stop: asyncio.Event | None = None) -> int:
        """Apply pending updates of every chat, ``concurrency`` chats at a time; returns how many."""
        async with self._uow_factory() as uow:
            chats = await uow.inbox.chats_with_pending()
        gate = asyncio.Semaphore(concurrency)

        async def one_chat(chat_id: int) -> int:
            async with gate:
                return len(await self.process_chat(chat_id, stop))

        results = await asyncio.gather(*(one_chat(chat_id) for chat_id in chats), return_exceptions=True)
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:  # every chat has had its turn; the first error says why the others may wait
            raise errors[0]
        return sum(result for result in results if isinstance(result, int))

    async def cleanup(self) -> int:
        """Remove expired conversations, and what is past its retention; returns the conversations removed.

        Each removed conversation leaves a tombstone, so the user's next message is told it expired;
        tombstones go after :data:`TOMBSTONE_RETENTION`. The content of handled updates and sent
        replies goes after ``text_retention``; an update's identity stays for :data:`INBOX_RETENTION`
        — far longer than Telegram keeps redelivering one — so a late duplicate is still recognised.
        """
        now = self._clock()
        async with self._uow_factory() as uow:
            removed = await uow.conversations.delete_expired(now)
            forgotten = await uow.conversations.prune_tombstones(now - TOMBSTONE_RETENTION)
            redacted = await uow.inbox.redact(now - self._text_retention)
            pruned = await uow.inbox.prune(now - INBOX_RETENTION)
            pruned_replies = await uow.outbox.prune_sent(now - self._text_retention)
            await uow.commit()
        if removed or forgotten or redacted or pruned or pruned_replies:
            log.info(
                "cleanup.done",
                expired_conversations=removed,
                pruned_tombstones=forgotten,
                redacted_updates=redacted,
                pruned_updates=pruned,
                pruned_replies=pruned_replies,
            )
        return removed

    async def _apply_next(self, chat_id: int) -> Applied | None:
        factory = self._uow_factory
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: factory.is_conflict(e) or factory.is_unavailable(e)),
            stop=stop_after_attempt(self._attempts),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            reraise=True,
        )
        seen: list[PendingUpdate] = []
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._apply_in_transaction(chat_id, seen)
        except Exception as error:
            if not seen or factory.is_unavailable(error):
                raise
            log.exception("engine.step_failed", update_id=seen[-1].event.update_id, chat_id=chat_id)
            return await self._record_failure(seen[-1], error)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _apply_in_transaction(self, chat_id: int, seen: list[PendingUpdate]) -> Applied | None:
        started = time.perf_counter()
        async with self._uow_factory() as uow:
            await uow.lock_chat(chat_id)
            pending = await uow.inbox.next_pending(chat_id)
            if pending is None:
                return None
            seen.append(pending)
            event, now = pending.event, self._clock()
            outgoing = await self._dispatcher.apply(event, uow, now)
            await uow.outbox.add(chat_id, outgoing, event.update_id, now)
            await uow.inbox.mark_done(pending.inbox_id, APPLIED, now)
            await uow.commit()
        failpoint("engine.after_commit")
        log.info(
            "engine.update_applied",
            update_id=event.update_id,
            chat_id=chat_id,
            messages=len(outgoing),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return Applied(event.update_id, APPLIED, tuple(outgoing))

    async def _record_failure(self, failed: PendingUpdate, error: BaseException) -> Applied | None:
        event = failed.event
        apology: list[Outgoing] = [Reply(APOLOGY)]
        if event.kind is EventKind.CALLBACK and event.callback_id:
            apology.insert(0, CallbackAnswer(event.callback_id))
        async with self._uow_factory() as uow:
            await uow.lock_chat(event.chat_id)
            pending = await uow.inbox.next_pending(event.chat_id)
            if pending is None or pending.inbox_id != failed.inbox_id:
                return None
            now = self._clock()
            await uow.outbox.add(event.chat_id, apology, event.update_id, now)
            await uow.inbox.mark_done(failed.inbox_id, FAILED, now, error=redact(repr(error))[:2000])
            await uow.commit()
        return Applied(event.update_id, FAILED, tuple(apology))

