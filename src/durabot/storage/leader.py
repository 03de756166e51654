"""A lease that lets exactly one process poll Telegram while others only process and relay."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.backoff import Backoff
from durabot.storage.availability import describe
from durabot.storage.database import Database
from durabot.waiting import wait_for_any

log = structlog.get_logger("durabot.leader")

POLLER_LOCK_KEY = 0x6475_7261_706F_6C6C  # "durapoll"

CHECK_INTERVAL_SECONDS = 1.0
"""How often the holder checks its lease while a ``getUpdates`` is in flight."""

CHECK_TIMEOUT_SECONDS = 2.0
"""A lease check that takes longer than this counts as a lost lease."""

TAKEOVER_GRACE_SECONDS = CHECK_INTERVAL_SECONDS + CHECK_TIMEOUT_SECONDS
"""How long a process that had to wait for the lease holds back its first ``getUpdates``.

A deposed holder notices within one check interval plus one check timeout and stops polling,
so after this pause two processes never poll at once.
"""


class LeaderLease:
    """On PostgreSQL a session advisory lock held on a dedicated connection; on SQLite always granted.

    The lock goes with the connection: when the holder dies, or the database restarts, the lock
    is gone. The holder checks it before every ``getUpdates`` (:meth:`held`) and while one is in
    flight (:meth:`lost`), and steps down when it is gone; others wait in :meth:`acquire`.

    Args:
        database: Where the lock lives.
        key: The advisory-lock key (64 bits).
        busy_retry_seconds: How often a standby asks again while another process holds the lease.
        backoff: Pauses between attempts that failed because the database could not be reached.
    """

    def __init__(
        self,
        database: Database,
        key: int = POLLER_LOCK_KEY,
        busy_retry_seconds: float = 2.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._database = database
        self._key = key - (1 << 64) if key >= 1 << 63 else key
        self._busy_retry = busy_retry_seconds
        self._backoff = backoff or Backoff(first=0.25, cap=3.0)
        self._connection: AsyncConnection | None = None
        self._checking = asyncio.Lock()

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process holds the lease (``True``) or ``stop`` is set (``False``).

        Failed attempts (the database is down, starting up, refusing connections) are logged
        at WARNING and retried with backoff, forever. A process that had to wait also waits
        :data:`TAKEOVER_GRACE_SECONDS` before returning, so the previous holder has stopped.
        """
        if not self._database.is_postgresql:
            return not stop.is_set()
        waited = False
        while not stop.is_set():
            try:
                if await self._try_lock():
                    self._backoff.reset()
                    return await self._after_takeover(stop) if waited else True
                pause = self._busy_retry
            except Exception as error:
                pause = self._backoff.next()
                log.warning(
                    "leader.acquire_failed", attempt=self._backoff.failures, retry_in=pause, error=describe(error)
                )
            waited = True
            await wait_for_any(stop, timeout=pause)
        return False

    async def held(self) -> bool:
        """Whether the lease is still ours: its connection answers. A dead or silent connection loses it."""
        if not self._database.is_postgresql:
            return True
        async with self._checking:
            connection = self._connection
            if connection is None:
                return False
            try:
                await asyncio.wait_for(connection.scalar(text("SELECT 1")), CHECK_TIMEOUT_SECONDS)
                return True
            except Exception as error:
                log.warning("leader.lease_lost", error=describe(error))
                await self._discard()
                return False

    async def lost(self) -> None:
        """Return once the lease is lost, checking every :data:`CHECK_INTERVAL_SECONDS`; never, on SQLite."""
        while await asyncio.shield(self.held()):
            await asyncio.sleep(CHECK_INTERVAL_SECONDS)

    async def try_acquire(self) -> bool:
        """Take the lease now if no other process holds it (``False`` if one does); no waiting, no grace.

        Raises:
            Exception: the database could not be reached.
        """
        if not self._database.is_postgresql:
            return True
        async with self._checking:
            if self._connection is not None:
                return True
            return await self._try_lock()

    async def release(self) -> None:
        """Give the lease up (nothing to do if it was already lost)."""
        async with self._checking:
            if self._connection is None:
                return
            try:
                await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
                await self._connection.close()
            except Exception as error:
                log.warning("leader.release_failed", error=describe(error))
                await self._discard()
            finally:
                self._connection = None

    async def _try_lock(self) -> bool:
        connection = await self._database.engine.connect()
        try:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            taken = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}))
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            raise
        if not taken:
            await connection.close()
            return False
        self._connection = connection
        return True

    async def _after_takeover(self, stop: asyncio.Event) -> bool:
        log.info("leader.acquired_after_wait", grace_seconds=TAKEOVER_GRACE_SECONDS)
        await wait_for_any(stop, timeout=TAKEOVER_GRACE_SECONDS)
        if stop.is_set():
            await self.release()
            return False
        return True

    async def _discard(self) -> None:
        """Drop the lease's connection without talking to the server (which may be gone)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()
