"""A relay's share of its bot's overall send rate: the relays of one bot register, and each takes an equal part.

Telegram counts a bot's sends, not a process's: with three workers each relay sends at a third of
``TELEGRAM_GLOBAL_RATE``. Every relay heartbeats in a shared registry (the database) and re-reads
how many relays are live on each heartbeat. A relay that joins takes its share at once; the others
follow within one heartbeat. A relay that dies without unregistering ages out after
:data:`LIVE_FOR` and the others take its share back.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Protocol

import structlog

from durabot.backoff import Backoff
from durabot.outbox import OutboxUnavailableError
from durabot.transport.rate_limits import RateLimits
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.relay")

HEARTBEAT_SECONDS = 5.0
"""How often a relay says it is alive and re-reads its share."""

LIVE_FOR = timedelta(seconds=3 * HEARTBEAT_SECONDS)
"""A relay whose last heartbeat is older than this no longer counts (it missed three)."""


class RelayRegistry(Protocol):
    """Where the relays of one bot say they are alive (see :class:`durabot.storage.relay_workers.RelayWorkers`)."""

    async def heartbeat(self) -> int:
        """Record that this relay is alive (registering it if need be); returns how many are live, itself included.

        Raises:
            OutboxUnavailableError: the registry's store (the outbox's database) cannot be reached now.
        """

    async def unregister(self) -> None:
        """This relay stops: it no longer counts."""


def share(overall_per_second: float | None, live_relays: int) -> float | None:
    """One relay's part of the bot's overall rate (``None``: no limit)."""
    return overall_per_second / max(1, live_relays) if overall_per_second else None


class RateShare:
    """Keeps ``limits``' overall rate at this relay's share of ``overall_per_second``.

    Args:
        registry: Where this bot's relays heartbeat.
        limits: The relay's limits; their overall rate is set on every heartbeat.
        overall_per_second: The bot's overall rate (``TELEGRAM_GLOBAL_RATE``); ``None`` for no limit.
        heartbeat_seconds: How often to heartbeat and re-read the share.
    """

    def __init__(
        self,
        registry: RelayRegistry,
        limits: RateLimits,
        overall_per_second: float | None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._registry = registry
        self._limits = limits
        self._overall = overall_per_second or None
        self._heartbeat = heartbeat_seconds
        self.live_relays = 1
        """How many relays of the bot were live at the last heartbeat that succeeded."""

    async def refresh(self) -> float | None:
        """Heartbeat once and take the share it gives; returns this relay's overall rate now."""
        live = await self._registry.heartbeat()
        if live != self.live_relays:
            log.info("relay.share_changed", live_relays=live, per_second=share(self._overall, live))
        self.live_relays = live
        self._limits.set_overall(share(self._overall, live))
        return self._limits.overall_per_second

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat until ``stop`` is set, then unregister.

        A heartbeat that fails is tried again after a growing pause, logged at WARNING while the
        database cannot be reached (with its traceback otherwise); the share stays as it was meanwhile.
        """
        backoff = Backoff(first=0.5, cap=self._heartbeat)
        try:
            while not stop.is_set():
                pause = self._heartbeat
                try:
                    await self.refresh()
                    backoff.reset()
                except OutboxUnavailableError as error:
                    pause = backoff.next()
                    log.warning("relay.heartbeat_database_unavailable", error=str(error), retry_in=pause)
                except Exception:
                    pause = backoff.next()
                    log.exception("relay.heartbeat_failed", retry_in=pause)
                await wait_for_any(stop, timeout=pause)
        finally:
            await self.leave()

    async def leave(self) -> None:
        """Unregister, so the others take this relay's share at their next heartbeat; a failure is only logged."""
        try:
            await self._registry.unregister()
        except Exception as error:
            reason = str(error) if isinstance(error, OutboxUnavailableError) else type(error).__name__
            log.warning("relay.unregister_failed", error=reason)
