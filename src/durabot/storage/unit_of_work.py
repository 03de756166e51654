"""The SQLAlchemy unit of work: one Core connection, one transaction, and the chat lock for each dialect.

It is both ports of a step: the engine's :class:`~durabot.engine.ports.UnitOfWork` and the
:class:`~durabot.engine.ports.Domains` it hands to flows, commands and buttons.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from types import TracebackType
from typing import Self

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import bindparam, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.clock import Clock, utc_now
from durabot.domain.cases import CaseRepository, IntakeProgressRepository
from durabot.domain.machines import MachineRepository
from durabot.engine.apply import apply_writes
from durabot.engine.events import Event
from durabot.engine.ports import ConversationStore, Domains, Inbox, Outbox, UserRecords
from durabot.engine.writes import WriteSet
from durabot.engine.user_records import StoredUserRecords
from durabot.storage import availability
from durabot.storage.case_repositories import SqlAlchemyCaseRepository, SqlAlchemyIntakeProgressRepository
from durabot.storage.database import Database
from durabot.storage.inbox import SqlAlchemyInbox
from durabot.storage.pg_step import PgStepConversations, PgStepInbox, PgStepOutbox, PgStepWriter
from durabot.storage.repositories import SqlAlchemyConversationStore, SqlAlchemyMachineRepository, SqlAlchemyOutbox

CHAT_LOCK_NAMESPACE = 0x64_75_72_61  # "dura": keeps our advisory-lock keys apart from other applications'


def chat_lock_key(chat_id: int) -> int:
    """The PostgreSQL advisory-lock key of a chat: a signed 64-bit mix of namespace and chat id."""
    mixed = (chat_id * 0x9E3779B97F4A7C15 + CHAT_LOCK_NAMESPACE) & 0xFFFF_FFFF_FFFF_FFFF
    return mixed - (1 << 64) if mixed >= 1 << 63 else mixed


_LOCK_CHAT = select(text("pg_advisory_xact_lock(:key)").bindparams(bindparam("key")))
_BEGIN = select(literal(1))


class SqlAlchemyUnitOfWork:
    """A transaction over every SQLAlchemy repository; rolled back unless committed."""

    connection: AsyncConnection
    conversations: ConversationStore
    inbox: Inbox
    outbox: Outbox
    machines: MachineRepository
    cases: CaseRepository
    intake: IntakeProgressRepository
    user_records: UserRecords

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        self._exit_stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Self:
        if self._database.writer_lock is not None:
            await self._exit_stack.enter_async_context(self._database.writer_lock)
        # commit as you go: the first statement begins the transaction (BEGIN IMMEDIATE on SQLite)
        self.connection = await self._exit_stack.enter_async_context(self._database.engine.connect())
        self._driver_connection: asyncpg.Connection | None = None
        self._writer: PgStepWriter | None = None
        if self._database.is_postgresql:  # the step's own statements go through the driver (see pg_step)
            self.conversations = PgStepConversations(self._driver, self.connection)
            inbox = PgStepInbox(self._driver, self.connection, self._database.dialect)
            self.inbox = inbox
            self.outbox = PgStepOutbox(self._driver, self.connection)
            self._writer = PgStepWriter(self._driver, inbox)
        else:
            self.conversations = SqlAlchemyConversationStore(self.connection)
            self.inbox = SqlAlchemyInbox(self.connection, self._database.dialect)
            self.outbox = SqlAlchemyOutbox(self.connection)
        self.machines = SqlAlchemyMachineRepository(self.connection, self._clock)
        self.cases = SqlAlchemyCaseRepository(self.connection)
        self.intake = SqlAlchemyIntakeProgressRepository(self.connection)
        self.user_records = StoredUserRecords(self.conversations, self.inbox, self.outbox)
        return self

    @property
    def domains(self) -> Domains:
        """This same unit of work: it holds the domain stores too."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.rollback()
        finally:
            await self._exit_stack.aclose()

    async def lock_chat(self, chat_id: int) -> None:
        """PostgreSQL: a transaction-scoped advisory lock. SQLite: the write lock taken at BEGIN."""
        if self._database.is_postgresql:
            await self.connection.execute(_LOCK_CHAT, {"key": chat_lock_key(chat_id)})

    async def apply(self, writes: WriteSet, event: Event, now: datetime) -> None:
        """On PostgreSQL a step of the usual shape is written in one statement (see :class:`PgStepWriter`)."""
        if self._writer is not None and await self._writer.write(writes, event, now):
            return
        await apply_writes(writes, event, now, self.conversations, self.domains, self.inbox, self.outbox)

    async def _driver(self) -> asyncpg.Connection:
        """The asyncpg connection under this unit of work, inside its transaction (begun through SQLAlchemy if need be)."""
        if not self.connection.in_transaction():
            await self.connection.execute(_BEGIN)  # SQLAlchemy's driver adapter begins with its first statement
        if self._driver_connection is None:
            self._driver_connection = (await self.connection.get_raw_connection()).driver_connection
        assert self._driver_connection is not None
        return self._driver_connection

    async def commit(self) -> None:
        await self.connection.commit()

    async def rollback(self) -> None:
        await self.connection.rollback()


class SqlAlchemyUnitOfWorkFactory:
    """Opens :class:`SqlAlchemyUnitOfWork` on one database and classifies its errors."""

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self.database = database
        self._clock = clock

    def __call__(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.database, self._clock)

    def is_conflict(self, error: BaseException) -> bool:
        return availability.is_conflict(error)

    def is_unavailable(self, error: BaseException) -> bool:
        return availability.is_unavailable(error)
