"""A lease that lets exactly one process poll Telegram while others only process and relay."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.storage.database import Database
from durabot.waiting import wait_for_any

POLLER_LOCK_KEY = 0x6475_7261_706F_6C6C  # "durapoll"


class LeaderLease:
    """On PostgreSQL a session advisory lock held on a dedicated connection; on SQLite always granted.

    The lock goes with the connection, so when the holder dies another process takes over.
    """

    def __init__(self, database: Database, key: int = POLLER_LOCK_KEY) -> None:
        self._database = database
        self._key = key - (1 << 64) if key >= 1 << 63 else key
        self._connection: AsyncConnection | None = None

    async def acquire(self, stop: asyncio.Event, retry_seconds: float = 2.0) -> bool:
        """Wait until this process holds the lease (``True``) or ``stop`` is set (``False``)."""
        if not self._database.is_postgresql:
            return True
        while not stop.is_set():
            connection = await self._database.engine.connect()
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            if await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}):
                self._connection = connection
                return True
            await connection.close()
            await wait_for_any(stop, timeout=retry_seconds)
        return False

    async def release(self) -> None:
        """Give the lease up."""
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            finally:
                await self._connection.close()
                self._connection = None
