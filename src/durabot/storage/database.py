"""Opening the database: async engines for PostgreSQL and SQLite, with SQLite made durable and single-writer.

Every engine hides SQL parameters (``hide_parameters=True``) from its log lines and error
messages: the parameters are users' answers, raw updates and machines' fields.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from durabot.config import normalise_database_url
from durabot.errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 30_000
POOL_OVERFLOW = 4
"""Connections opened beyond the pool's size for a burst (the CLI, a slow step), closed when returned."""


class Database:
    """An async engine plus what durabot needs to know about its dialect.

    On SQLite every transaction starts with ``BEGIN IMMEDIATE`` (so the single write
    lock is taken before anything is read) and, within one process, transactions
    queue on an asyncio lock instead of spinning on SQLite's busy handler.

    Args:
        url: The database to open.
        pool_size: How many connections the pool keeps open (SQLAlchemy's default, 5, when not given).
        engine_options: Passed to SQLAlchemy's ``create_async_engine``.

    Raises:
        ConfigurationError: a SQLite file is asked for in a folder that does not exist.
    """

    def __init__(self, url: str, pool_size: int | None = None, **engine_options: Any) -> None:
        self.url = normalise_database_url(url)
        if pool_size is not None:  # connections kept open; a few more may open for a burst, then close
            engine_options = {"pool_size": pool_size, "max_overflow": POOL_OVERFLOW, **engine_options}
        self.dialect = make_url(self.url).get_backend_name()
        if self.is_sqlite:
            _require_sqlite_folder(self.url)
        self.engine: AsyncEngine = create_async_engine(self.url, **{**engine_options, "hide_parameters": True})
        self.writer_lock: asyncio.Lock | None = None
        if self.is_sqlite:
            self.writer_lock = asyncio.Lock()
            _make_sqlite_durable(self.engine)

    @property
    def is_sqlite(self) -> bool:
        """Whether this is a SQLite database."""
        return self.dialect == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        """Whether this is a PostgreSQL database."""
        return self.dialect == "postgresql"

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction that commits on success; on SQLite it queues for the writer lock."""
        async with contextlib.AsyncExitStack() as stack:
            if self.writer_lock is not None:
                await stack.enter_async_context(self.writer_lock)
            connection = await stack.enter_async_context(self.engine.begin())
            yield connection

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _require_sqlite_folder(url: str) -> None:
    """Refuse a SQLite file whose folder is missing, before a driver thread fails on it."""
    parsed = make_url(url)
    name = parsed.database or ""
    if name in ("", ":memory:") or parsed.query.get("uri") or name.startswith("file:"):
        return
    folder = Path(name).expanduser().parent
    if not folder.is_dir():
        raise ConfigurationError(f"DATABASE_URL: folder {folder} does not exist (create it, or put the SQLite file elsewhere)")


def _make_sqlite_durable(engine: AsyncEngine) -> None:
    """WAL journal, full sync, enforced foreign keys, a busy timeout, and BEGIN IMMEDIATE."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
