"""The engine: stores incoming events in the inbox, then applies each in its own transaction."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from durabot.clock import Clock, utc_now
from durabot.engine.conversation import TOMBSTONE_RETENTION
from durabot.engine.dispatch import Dispatcher
from durabot.engine.events import Event, EventKind, IgnoredUpdate, Received
from durabot.engine.ports import PendingUpdate, UnitOfWork, UnitOfWorkFactory
from durabot.engine.registry import Registry
from durabot.engine.writes import FlowEvent, Handled
from durabot.failpoints import failpoint
from durabot.observe import BaseObserver, Observer
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
    more_pending: bool = False
    """Whether another update of the same chat was waiting when this one was taken."""
    seconds: float = 0.0
    """How long the step took, from taking the update to its commit."""
    flow: str = ""
    """The flow whose conversation the step worked on ("" for a command or nothing in progress)."""
    flow_events: tuple[FlowEvent, ...] = ()
    """What the step did to conversations: started one, reached a step, ended one."""


@dataclass(frozen=True)
class Intake:
    """What :meth:`Engine.take_in` did with a batch: how many updates were new, and how many of those still wait."""

    new: int
    waiting: int


class Engine:
    """Applies each update exactly once, one transaction per update, per chat in ``update_id`` order.

    Args:
        uow_factory: Opens the transactions every step runs in.
        registry: The flows, commands and buttons the bot understands.
        ttl: How long an untouched conversation lives.
        clock: Where the engine reads the time.
        attempts: How many times a step that clashed with concurrent work is tried.
        text_retention: How long the content of handled updates and sent replies is kept.
        concurrency: How many chats are worked on at once, unless a call says otherwise.
        observer: Told of each update once its outcome is committed (the service wakes its relay
            from it; metrics hang off it).
    """

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        registry: Registry,
        ttl: timedelta = timedelta(hours=24),
        clock: Clock = utc_now,
        attempts: int = 3,
        text_retention: timedelta = TEXT_RETENTION,
        concurrency: int = 4,
        observer: Observer | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._dispatcher = Dispatcher(registry, ttl)
        self._clock = clock
        self._attempts = attempts
        self._text_retention = text_retention
        self._observer: Observer = observer or BaseObserver()
        self._concurrency = concurrency

    async def receive(self, items: Sequence[Received], raw: Mapping[int, Any] | None = None) -> int:
        """Store ``items`` in the inbox in one transaction (``raw``: their JSON by update id); returns how many were new."""
        async with self._uow_factory() as uow:
            added = await uow.inbox.add(items, self._clock(), raw)
            await uow.commit()
        return added

    async def take_in(
        self, items: Sequence[Received], raw: Mapping[int, Any] | None = None, concurrency: int | None = None
    ) -> Intake:
        """Store each update and, where nothing of its chat waits before it, apply it in that same transaction.

        This is the hot path: one transaction per update. An update whose chat has a backlog, and
        any step that clashes or fails, is left pending for :meth:`process_chat` (the two-phase
        path, with its retries and failure records). When this returns, every new update is
        committed, applied or pending, so the transport may confirm them. Chats are taken
        ``concurrency`` at a time, each chat's updates in order.

        Raises:
            Exception: whatever the unit of work raised when the database is unavailable even to
                store an update as pending; that update is not stored, so the transport must not
                confirm it (those before it in the batch are stored, and recognised when redelivered).
        """
        ignored = [item for item in items if isinstance(item, IgnoredUpdate)]
        new = await self.receive(ignored, raw) if ignored else 0
        if new:
            self._observer.updates_ignored(new)
        by_chat: dict[int, list[Event]] = {}
        for item in sorted((i for i in items if isinstance(i, Event)), key=lambda e: e.update_id):
            by_chat.setdefault(item.chat_id, []).append(item)
        gate = asyncio.Semaphore(concurrency or self._concurrency)

        async def one_chat(events: list[Event]) -> list[tuple[bool, bool]]:
            async with gate:
                return [await self._take_one(event, raw) for event in events]

        taken = [t for chat in await asyncio.gather(*(one_chat(e) for e in by_chat.values())) for t in chat]
        return Intake(new + sum(stored for stored, _ in taken), sum(waiting for _, waiting in taken))

    async def handle(self, event: Event) -> list[Applied]:
        """Receive one event and apply everything pending in its chat, this event included."""
        applied: list[Applied] = []
        _, waiting = await self._take_one(event, None, applied)
        if waiting or (applied and applied[-1].more_pending):
            applied += await self.process_chat(event.chat_id)
        return applied

    async def process_chat(self, chat_id: int, stop: asyncio.Event | None = None) -> list[Applied]:
        """Apply the chat's pending updates in ``update_id`` order until none is left (or ``stop`` is set)."""
        applied: list[Applied] = []
        while not (stop and stop.is_set()) and (result := await self._apply_next(chat_id)) is not None:
            applied.append(result)
            self._observer.update_applied(result)
            if not result.more_pending:  # known from the look-up that took it: no empty look-up after the last
                break
        return applied

    async def process_pending(self, concurrency: int | None = None, stop: asyncio.Event | None = None) -> int:
        """Apply pending updates of every chat, ``concurrency`` chats at a time; returns how many."""
        async with self._uow_factory() as uow:
            chats = await uow.inbox.chats_with_pending()
        gate = asyncio.Semaphore(concurrency or self._concurrency)

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

    async def _take_one(
        self, event: Event, raw: Mapping[int, Any] | None, applied: list[Applied] | None = None
    ) -> tuple[bool, bool]:
        """Store ``event`` and apply it at once if it heads its chat's queue; returns (new, left waiting)."""
        started = time.perf_counter()
        content = (raw or {}).get(event.update_id)
        try:
            async with self._uow_factory() as uow:
                await uow.lock_chat(event.chat_id)
                arrival = await uow.inbox.arrival(event, content)
                if arrival.known:
                    return False, False  # a redelivery: already stored, applied or waiting
                if arrival.behind:
                    await uow.inbox.add([event], self._clock(), raw)
                    await uow.commit()  # the chat has a backlog: it waits its turn
                    return True, True
                result = await self._apply(uow, event, Handled(APPLIED, None, content), started)
        except Exception as error:
            if self._uow_factory.is_unavailable(error) or self._uow_factory.is_conflict(error):
                # kept pending for the two-phase path to retry; if the database is away, receive raises too
                return bool(await self.receive([event], raw)), True
            log.exception("engine.step_failed", update_id=event.update_id, chat_id=event.chat_id)
            failed = await self._record_failure(PendingUpdate(0, event), error, arriving=raw or {})
            if failed is None:
                return True, True
            result = failed
        self._observer.update_applied(result)
        if applied is not None:
            applied.append(result)
        return True, False

    async def _apply_in_transaction(self, chat_id: int, seen: list[PendingUpdate]) -> Applied | None:
        started = time.perf_counter()
        async with self._uow_factory() as uow:
            await uow.lock_chat(chat_id)
            pending = await uow.inbox.next_pending(chat_id)
            if pending is None:
                return None
            seen.append(pending)
            return await self._apply(uow, pending.event, Handled(APPLIED, pending.inbox_id), started, pending.more)

    async def _apply(
        self, uow: UnitOfWork, event: Event, handled: Handled, started: float, more: bool = False
    ) -> Applied:
        """Decide the step for ``event`` from what ``uow`` holds, write its write-set there with ``handled``, and commit.

        ``more``: whether another update of the chat was waiting when this one was taken.
        """
        now = self._clock()
        writes = await self._dispatcher.decide(event, uow, now)
        writes.handled = handled
        await uow.apply(writes, event, now)
        await uow.commit()
        outgoing = writes.outgoing
        failpoint("engine.after_commit")
        seconds = time.perf_counter() - started
        log.info(
            "engine.update_applied",
            update_id=event.update_id,
            chat_id=event.chat_id,
            messages=len(outgoing),
            ms=round(seconds * 1000, 1),
        )
        events = tuple(writes.flow_events)
        flow = next((e.flow for e in events), "") or next(
            (c.conversation.flow_name for c in writes.conversations.values() if c.conversation is not None), ""
        )
        return Applied(event.update_id, APPLIED, tuple(outgoing), more, seconds, flow, events)

    async def _record_failure(
        self, failed: PendingUpdate, error: BaseException, arriving: Mapping[int, Any] | None = None
    ) -> Applied | None:
        """Mark ``failed`` failed with an apology, if it still heads its chat's queue.

        ``arriving`` (its raw JSON, possibly empty) says it failed on the hot path and is not stored yet.
        """
        event = failed.event
        apology: list[Outgoing] = [Reply(APOLOGY)]
        if event.kind is EventKind.CALLBACK and event.callback_id:
            apology.insert(0, CallbackAnswer(event.callback_id))
        async with self._uow_factory() as uow:
            await uow.lock_chat(event.chat_id)
            if arriving is not None:
                await uow.inbox.add([event], self._clock(), arriving)
            pending = await uow.inbox.next_pending(event.chat_id)
            heads = pending is not None and (
                pending.event.update_id == event.update_id if arriving is not None else pending.inbox_id == failed.inbox_id
            )
            if pending is None or not heads:
                await uow.commit()  # stored, if it was arriving; the two-phase path takes it from here
                return None
            now = self._clock()
            await uow.outbox.add(event.chat_id, apology, event.update_id, now)
            await uow.inbox.mark_done(pending.inbox_id, FAILED, now, error=redact(repr(error))[:2000])
            await uow.commit()
        return Applied(event.update_id, FAILED, tuple(apology), pending.more)

