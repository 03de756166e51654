"""Outage mode: when the primary stays away past a grace period, the polling worker goes on against the journal.

:class:`OutageMonitor` probes the primary, engages the journal (``journal.engaged``), runs the
journal's relay while engaged, and replays the journal once the primary answers again
(``journal.replayed``). :class:`JournalLease` lets the poller keep polling while engaged,
although the polling lease went with the primary's connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog
from sqlalchemy import text

from durabot.journal.replay import Replayer, ReplayReport
from durabot.journal.routing import Route
from durabot.journal.store import Journal
from durabot.observe import BaseObserver, Observer
from durabot.storage.availability import describe, is_unavailable
from durabot.storage.database import Database
from durabot.storage.leader import CHECK_INTERVAL_SECONDS, CHECK_TIMEOUT_SECONDS, LeaderLease
from durabot.transport.relay import OutboxRelay
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.journal")

PROBE_SECONDS = 0.5
"""How often the primary is probed."""

PROBE_TIMEOUT_SECONDS = 2.0
"""A probe that takes longer than this counts as the primary being away."""


class OutageMonitor(BaseObserver):
    """Decides when the journal takes over and when it is replayed; watches this process's leadership.

    Only a process that was polling when the primary went away engages the journal (with polling,
    Telegram gives each update to one ``getUpdates`` caller, so no other process sees those
    updates); a standby and a webhook server never do — the webhook answers 503 meanwhile.

    Args:
        primary: The primary database (PostgreSQL).
        journal: The local journal.
        route: Where units of work go; switched here.
        replayer: Replays the journal into the primary.
        grace: Seconds the primary must be away before the journal takes over.
        new_relay: A relay over the journal's outbox, made for each outage.
        observer: Told when outage mode begins and ends (:meth:`~durabot.observe.Observer.journal_changed`).
    """

    def __init__(
        self,
        primary: Database,
        journal: Journal,
        route: Route,
        replayer: Replayer,
        grace: float,
        new_relay: Callable[[], OutboxRelay] | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
    ) -> None:
        self._primary = primary
        self._journal = journal
        self._route = route
        self._replayer = replayer
        self._grace = grace
        self.new_relay = new_relay
        self._clock = clock
        self._observer: Observer = observer or BaseObserver()
        self._down_since: float | None = None
        self._reason = ""
        self._polling = False
        self._stepped_down_at: float | None = None
        self._relay: OutboxRelay | None = None
        self._relay_task: asyncio.Task[None] | None = None
        self.primary_up = True
        self.engaged_event = asyncio.Event()
        """Set while the journal is engaged."""

    @property
    def engaged(self) -> bool:
        """Whether steps go to the journal now."""
        return self._route.engaged

    def leadership_changed(self, polling: bool) -> None:
        self._polling = polling
        if not polling:
            self._stepped_down_at = self._clock()

    def _may_journal(self) -> bool:
        """Whether this process was polling when the primary went away (give or take one lease check)."""
        if self._polling:
            return True
        slack = CHECK_INTERVAL_SECONDS + CHECK_TIMEOUT_SECONDS
        return (
            self._down_since is not None
            and self._stepped_down_at is not None
            and self._stepped_down_at >= self._down_since - slack
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Probe and switch until ``stop`` is set; a journal left from an earlier run is replayed first."""
        leftover = True  # a journal left by an earlier run (killed during an outage or a replay) is replayed first
        try:
            while not stop.is_set():
                try:
                    self.primary_up = await self._probe()
                    now = self._clock()
                    if self.primary_up:
                        self._down_since = None
                        if self.engaged or (leftover and not (await self._journal.depth()).empty):
                            await self._replay(stop)
                        leftover = False
                    elif not self.engaged:
                        self._down_since = self._down_since or now
                        if now - self._down_since >= self._grace and self._may_journal():
                            self._engage(now - self._down_since)
                except Exception:
                    log.exception("journal.monitor_failed", retry_in=PROBE_SECONDS * 4)
                    await wait_for_any(stop, timeout=PROBE_SECONDS * 4)
                await wait_for_any(stop, timeout=PROBE_SECONDS)
        finally:
            await self._stop_relay()

    async def _probe(self) -> bool:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                async with self._primary.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            return True
        except Exception as error:
            if not isinstance(error, TimeoutError) and not is_unavailable(error):
                log.warning("journal.probe_failed", error=describe(error))
            self._reason = "timeout" if isinstance(error, TimeoutError) else describe(error)
            return False

    def _engage(self, away: float) -> None:
        self._route.release(engaged=True)
        self.engaged_event.set()
        log.warning("journal.engaged", reason=self._reason, away_seconds=round(away, 1), journal=str(self._journal.path))
        self._observer.journal_changed(engaged=True, depth=0)
        self._start_relay()

    async def _stop_relay(self) -> None:
        """Stop the journal's relay, letting the sends in hand be recorded."""
        relay, task = self._relay, self._relay_task
        self._relay, self._relay_task = None, None
        if relay is not None and task is not None:
            relay.stop()
            with contextlib.suppress(Exception):
                await task

    async def _replay(self, stop: asyncio.Event) -> None:
        """Replay while steps still go to the journal, then hold them, replay the rest and switch back.

        Steps keep going to the journal until the end (a journal left by an earlier run is
        engaged for this too), so each chat's new updates queue behind its replayed ones.
        """
        started = time.perf_counter()
        self._route.release(engaged=True)
        depth = await self._journal.depth()
        log.info("journal.replaying", updates=depth.updates, steps=depth.steps, unsent=depth.unsent)
        self._observer.journal_changed(engaged=True, depth=depth.updates)
        await self._stop_relay()  # what it has not sent is sent from the primary once replayed
        report = ReplayReport()
        try:
            await self._replayer.replay(report)
            await self._route.hold()
            try:
                await self._replayer.replay(report)
                drained = (await self._journal.depth()).empty
            finally:
                self._route.release(engaged=True)
        except Exception as error:
            if is_unavailable(error):
                log.warning("journal.replay_interrupted", error=describe(error), replayed=report.updates)
            else:
                log.exception("journal.replay_failed", replayed=report.updates)
            self._start_relay()
            await wait_for_any(stop, timeout=PROBE_SECONDS * 4)
            return
        if not drained:
            return
        self._route.release(engaged=False)
        self.engaged_event.clear()
        self._observer.journal_changed(engaged=False, depth=0)
        log.info(
            "journal.replayed",
            updates=report.updates,
            steps=report.steps,
            chats=len(report.chats),
            replies_already_sent=report.replies_sent_before,
            replies_to_send=report.replies_to_send,
            already_in_primary=report.already_there,
            conflicts=report.conflicts,
            set_aside=report.set_aside,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def _start_relay(self) -> None:
        """Send the journal's outbox while steps go to the journal."""
        if self._relay is None and self.new_relay is not None:
            self._relay = self.new_relay()
            self._relay_task = asyncio.create_task(self._relay.run())


class JournalLease:
    """The polling lease, which the process polling when the primary went away keeps while the journal is engaged.

    Outside an outage it is the :class:`~durabot.storage.leader.LeaderLease` it wraps. Once the
    primary is back the lease is taken again at once; if another process took it meanwhile,
    this one steps down.
    """

    def __init__(self, inner: LeaderLease, monitor: OutageMonitor) -> None:
        self._inner = inner
        self._monitor = monitor
        self._journal_term = False

    async def acquire(self, stop: asyncio.Event) -> bool:
        """The lease, or — while the journal is engaged here and the primary is away — a term of polling on the journal."""
        acquiring = asyncio.ensure_future(self._inner.acquire(stop))
        try:
            while not acquiring.done():
                engaged = asyncio.ensure_future(self._monitor.engaged_event.wait())
                try:
                    await asyncio.wait({acquiring, engaged}, timeout=CHECK_INTERVAL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    engaged.cancel()
                if not acquiring.done() and self._monitor.engaged and not self._monitor.primary_up:
                    break
            else:
                return acquiring.result()
        except BaseException:
            acquiring.cancel()
            raise
        acquiring.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await acquiring
        await self._inner.release()
        self._journal_term = True
        log.info("journal.polling")
        return not stop.is_set()

    async def held(self) -> bool:
        if not self._journal_term:
            return await self._inner.held()
        if self._monitor.engaged and not self._monitor.primary_up:
            return True
        try:  # the primary is back: take the lease again, unless another process has it by now
            taken = await self._inner.try_acquire()
        except Exception as error:
            log.warning("leader.acquire_failed", attempt=1, retry_in=0, error=describe(error))
            return self._monitor.engaged
        if taken:
            self._journal_term = False
            return True
        log.warning("journal.lease_taken_meanwhile")
        return False

    async def lost(self) -> None:
        while await asyncio.shield(self.held()):
            await asyncio.sleep(CHECK_INTERVAL_SECONDS)

    async def release(self) -> None:
        self._journal_term = False
        await self._inner.release()

