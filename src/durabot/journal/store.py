"""The journal file: a durabot SQLite database on local disk, plus the write-set of every step applied on it."""

from __future__ import annotations

import fcntl
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import structlog

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, Text, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.clock import Clock, utc_now
from durabot.engine.events import Event
from durabot.engine.ports import ConversationStore, Domains, Inbox, Outbox
from durabot.engine.writes import WriteSet
from durabot.journal.codec import dump_writes
from durabot.outbox import UNFINISHED_VALUES
from durabot.storage.database import Database
from durabot.storage.migrate import upgrade
from durabot.storage.inbox import UPDATES
from durabot.storage.repositories import OUTBOX
from durabot.storage.tables import UtcDateTime
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWork, SqlAlchemyUnitOfWorkFactory

log = structlog.get_logger("durabot.journal")

JOURNAL_METADATA = MetaData()
JOURNAL_STEPS = Table(
    "journal_steps",
    JOURNAL_METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("chat_id", BigInteger, nullable=False),
    Column("update_id", BigInteger, nullable=False),
    Column("writes", Text, nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)
"""Each step applied on the journal, with its write-set, until it has been replayed into the primary."""

JOURNAL_SET_ASIDE = Table(
    "journal_set_aside",
    JOURNAL_METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("chat_id", BigInteger),
    Column("update_id", BigInteger, nullable=False),
    Column("writes", Text),
    Column("error", Text, nullable=False),
    Column("set_aside_at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)
"""Steps the replay could not write into the primary (a bug, not an outage): kept here for an operator."""

JOURNAL_META = Table(
    "journal_meta",
    JOURNAL_METADATA,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)
"""Facts about the journal: which primary it is kept for."""


class JournalInUseError(Exception):
    """Another process has the journal file (each process needs its own ``JOURNAL_PATH``)."""


def _lock_file(path: Path) -> IO[bytes]:
    """An exclusive lock beside ``path``, held while the returned file stays open."""
    handle = open(f"{path}.lock", "ab")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise JournalInUseError(f"{path} is in use by another process") from None
    return handle



@dataclass(frozen=True)
class Depth:
    """What the journal holds that the primary does not have yet."""

    steps: int
    updates: int
    unsent: int

    @property
    def empty(self) -> bool:
        """Nothing left to replay."""
        return not (self.steps or self.updates)


class Journal:
    """The local journal at ``path``: the same tables as the primary (migrated the same way) and ``journal_steps``.

    Its write-through copy of conversations, cases, intake progress and machines lets a step
    continue where the primary left it; its inbox, outbox and steps hold what happened while the
    primary was away, until replayed.
    """

    def __init__(self, path: Path, clock: Clock = utc_now) -> None:
        self.path = path
        self.database = Database(f"sqlite+aiosqlite:///{path}")
        self._clock = clock
        self._stores = SqlAlchemyUnitOfWorkFactory(self.database, clock)
        self._lock: IO[bytes] | None = None

    async def open(self, primary: str) -> None:
        """Take the file for this process, and create or upgrade its tables; ``primary`` names the primary database.

        A journal kept for another primary is never replayed into this one: if it holds updates
        not replayed yet it is moved aside (``<file>.other-<time>``, logged as ``journal.set_aside``),
        otherwise removed, and a new one is begun.

        Raises:
            JournalInUseError: another process has the file.
            Exception: the file cannot be created or written.
        """
        self._lock = _lock_file(self.path)
        await self._prepare()
        async with self.database.engine.connect() as connection:
            kept_for = await connection.scalar(select(JOURNAL_META.c.value).where(JOURNAL_META.c.key == "primary"))
        if kept_for is not None and kept_for != primary:
            holds_updates = not (await self.depth()).empty
            await self.database.dispose()
            aside = self.path.with_name(f"{self.path.name}.other-{int(time.time())}")
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{self.path}{suffix}")
                if not source.exists():
                    continue
                if holds_updates:
                    source.rename(Path(f"{aside}{suffix}"))
                else:
                    source.unlink()  # only a copy of another database's conversations: nothing to keep
            if holds_updates:
                log.warning("journal.set_aside", kept_for_another_primary=True, moved_to=str(aside))
            await self._prepare()
            kept_for = None
        if kept_for is None:
            async with self.database.transaction() as connection:
                await connection.execute(insert(JOURNAL_META), {"key": "primary", "value": primary})

    async def _prepare(self) -> None:
        await upgrade(self.database)
        async with self.database.transaction() as connection:
            await connection.run_sync(JOURNAL_METADATA.create_all)

    def __call__(self) -> JournalUnitOfWork:
        """A unit of work on the journal that also keeps each step's write-set for the replay."""
        return JournalUnitOfWork(self._stores())

    async def depth(self) -> Depth:
        """How many steps and updates wait to be replayed, and how many replies to be sent."""
        async with self.database.engine.connect() as connection:
            steps = await connection.scalar(select(func.count()).select_from(JOURNAL_STEPS))
            updates = await connection.scalar(select(func.count()).select_from(UPDATES))
            unsent = await connection.scalar(
                select(func.count()).select_from(OUTBOX).where(OUTBOX.c.status.in_(UNFINISHED_VALUES))
            )
        return Depth(int(steps or 0), int(updates or 0), int(unsent or 0))

    async def close(self) -> None:
        """Release the file."""
        await self.database.dispose()
        if self._lock is not None:
            self._lock.close()
            self._lock = None


class JournalUnitOfWork:
    """A unit of work on the journal's stores that records the write-set of each step it applies."""

    conversations: ConversationStore
    inbox: Inbox
    outbox: Outbox

    def __init__(self, inner: SqlAlchemyUnitOfWork) -> None:
        self._inner = inner

    @property
    def domains(self) -> Domains:
        return self._inner.domains

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        self.conversations, self.inbox, self.outbox = self._inner.conversations, self._inner.inbox, self._inner.outbox
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    async def lock_chat(self, chat_id: int) -> None:
        await self._inner.lock_chat(chat_id)

    async def apply(self, writes: WriteSet, event: Event, now: datetime) -> None:
        await self._inner.apply(writes, event, now)
        row = {"chat_id": event.chat_id, "update_id": event.update_id, "writes": dump_writes(writes), "applied_at": now}
        await self._inner.connection.execute(insert(JOURNAL_STEPS), row)

    async def commit(self) -> None:
        await self._inner.commit()

    async def rollback(self) -> None:
        await self._inner.rollback()


async def forget_replayed(connection: AsyncConnection, update_row_id: int, chat_id: int, update_id: int, step_seq: int | None) -> None:
    """Remove from the journal an update that is now in the primary: its row, its step and its replies."""
    await connection.execute(delete(UPDATES).where(UPDATES.c.id == update_row_id))
    if step_seq is not None:
        await connection.execute(delete(JOURNAL_STEPS).where(JOURNAL_STEPS.c.seq == step_seq))
    await connection.execute(
        delete(OUTBOX).where(OUTBOX.c.chat_id == chat_id, OUTBOX.c.source_update_id == update_id)
    )

