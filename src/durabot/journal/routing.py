"""Units of work that go to the primary (written through to the journal) or, in outage mode, to the journal."""

from __future__ import annotations

import asyncio
from datetime import datetime
from types import TracebackType
from typing import Self

from durabot.engine.events import Event
from durabot.engine.ports import ConversationStore, Domains, Inbox, Outbox, UnitOfWork, UnitOfWorkFactory
from durabot.engine.writes import WriteSet
from durabot.journal.mirror import Mirror
from durabot.journal.store import Journal
from durabot.storage import availability


class Route:
    """Where new units of work go: the primary, or the journal while outage mode is engaged.

    While a replay finishes, :meth:`hold` makes new units of work wait until :meth:`release`,
    so that the last journal steps are replayed before anything goes to the primary again.
    """

    def __init__(self) -> None:
        self.engaged = False
        self._open_on_journal = 0
        self._journal_idle = asyncio.Event()
        self._journal_idle.set()
        self._gate = asyncio.Event()
        self._gate.set()

    async def enter(self) -> bool:
        """Wait for the gate; returns whether this unit of work goes to the journal (and counts it open)."""
        while not self._gate.is_set():  # woken by a release that a new hold may already have followed
            await self._gate.wait()
        if not self.engaged:
            return False
        self._open_on_journal += 1
        self._journal_idle.clear()
        return True

    def leave(self) -> None:
        """A journal unit of work ended."""
        self._open_on_journal -= 1
        if self._open_on_journal == 0:
            self._journal_idle.set()

    async def hold(self) -> None:
        """Make new units of work wait, and wait until none is open on the journal."""
        self._gate.clear()
        await self._journal_idle.wait()

    def release(self, engaged: bool) -> None:
        """Let units of work go again, to the journal if ``engaged`` and to the primary if not."""
        self.engaged = engaged
        self._gate.set()


class RoutedUnitOfWork:
    """A unit of work on the primary or the journal, chosen when it is entered."""

    conversations: ConversationStore
    inbox: Inbox
    outbox: Outbox

    def __init__(self, factory: JournalingUnitOfWorkFactory) -> None:
        self._factory = factory
        self._inner: UnitOfWork | None = None
        self._journaled = False
        self._applied: list[tuple[WriteSet, datetime]] = []

    @property
    def journaled(self) -> bool:
        """Whether this unit of work runs on the journal."""
        return self._journaled

    def _unit(self) -> UnitOfWork:
        assert self._inner is not None, "enter the unit of work first"
        return self._inner

    @property
    def domains(self) -> Domains:
        return self._unit().domains

    async def __aenter__(self) -> Self:
        factory = self._factory
        self._journaled = await factory.route.enter()
        try:
            inner: UnitOfWork = factory.journal() if self._journaled else factory.primary()
            await inner.__aenter__()
        except BaseException:
            if self._journaled:
                factory.route.leave()
            raise
        self._inner = inner
        self.conversations, self.inbox, self.outbox = inner.conversations, inner.inbox, inner.outbox
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._unit().__aexit__(exc_type, exc, tb)
        finally:
            if self._journaled:
                self._factory.route.leave()

    async def lock_chat(self, chat_id: int) -> None:
        await self._unit().lock_chat(chat_id)

    async def apply(self, writes: WriteSet, event: Event, now: datetime) -> None:
        await self._unit().apply(writes, event, now)
        if not self._journaled:
            self._applied.append((writes, now))

    async def commit(self) -> None:
        await self._unit().commit()
        mirror = self._factory.mirror
        for writes, now in self._applied:
            if mirror is not None:
                mirror.submit(writes, now)
        self._applied.clear()

    async def rollback(self) -> None:
        self._applied.clear()
        await self._unit().rollback()


class JournalingUnitOfWorkFactory:
    """The engine's units of work when an outage journal is configured.

    Args:
        primary: Opens units of work on the primary database.
        journal: The local journal.
        route: Says which of the two new units of work go to.
        mirror: Writes each committed primary step through to the journal.
    """

    def __init__(self, primary: UnitOfWorkFactory, journal: Journal, route: Route, mirror: Mirror | None) -> None:
        self.primary = primary
        self.journal = journal
        self.route = route
        self.mirror = mirror

    def __call__(self) -> RoutedUnitOfWork:
        return RoutedUnitOfWork(self)

    def is_conflict(self, error: BaseException) -> bool:
        return availability.is_conflict(error)

    def is_unavailable(self, error: BaseException) -> bool:
        return availability.is_unavailable(error)
