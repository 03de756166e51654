"""The outbox queue on SQLAlchemy: claim the head of each chat's queue, then record how sending went.

The claim reads each chat's head from the partial index on unsent rows (``DISTINCT ON`` on
PostgreSQL, ``GROUP BY … MIN(id)`` on SQLite), so its cost follows the backlog, never the sent
rows the table keeps. Every statement is built once and bound with parameters on each call.

With a chat rate, a chat's head is not claimable until its previous message went out at least
one pace ago (``1 / rate``; 3 s in a group): the pace holds across relays, since it is read
from the outbox itself. Callback answers neither wait nor count.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Table,
    Update,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.clock import Clock, utc_now
from durabot.outbox import UNFINISHED, OutboxItem, OutboxMethod, OutboxStatus, OutboxUnavailableError
from durabot.storage.availability import describe, is_unavailable
from durabot.storage.database import Database
from durabot.storage.tables import OutboxMessageRow, UtcDateTime

RELAY_CONNECTIONS = 4
"""How many database connections one relay uses at most."""

ERROR_LENGTH = 2000
"""How much of a failure's description is kept in ``last_error``."""

GROUP_PACE = timedelta(seconds=3)
"""The least time between two messages to a group (Telegram allows 20 a minute), whenever chats are paced."""

_table = cast(Table, OutboxMessageRow.__table__)


UNSENT_INDEX = "ix_outbox_messages_unsent_chat_id_id_next_attempt_at"
"""The partial index on unsent rows by chat and id (migration 0005)."""
_UNSENT_LITERALS = ", ".join(f"'{status.value}'" for status in UNFINISHED)


def _unsent(rows: FromClause) -> ColumnElement[bool]:
    """Still to be delivered; written with literals, not parameters, so that the planners match the partial index."""
    return rows.c.status.in_([literal_column(f"'{status.value}'") for status in UNFINISHED])


_SQLITE_HEADS = text(
    f"SELECT MIN(id) AS id, next_attempt_at FROM outbox_messages INDEXED BY {UNSENT_INDEX} "
    f"WHERE status IN ({_UNSENT_LITERALS}) GROUP BY chat_id"
).columns(_table.c.id, _table.c.next_attempt_at)
"""Each chat's oldest unsent row on SQLite, whose bare column in a MIN() query comes from the row holding the
minimum. The index is named because SQLite, without statistics, would rather read the status index and sort."""

_SQLITE_PACED_HEADS = text(
    f"SELECT MIN(id) AS id, next_attempt_at, chat_id, method FROM outbox_messages INDEXED BY {UNSENT_INDEX} "
    f"WHERE status IN ({_UNSENT_LITERALS}) GROUP BY chat_id"
).columns(_table.c.id, _table.c.next_attempt_at, _table.c.chat_id, _table.c.method)
"""The same with the chat and the method, which pacing needs (the method is not in the index)."""


def _postgresql_heads(paced: bool = False) -> Select[Any]:
    """Each chat's oldest unsent row (its id and when it is due; paced, its chat and method too), from the partial index."""
    unsent = _table.alias("unsent")
    columns = (unsent.c.id, unsent.c.next_attempt_at, *((unsent.c.chat_id, unsent.c.method) if paced else ()))
    return (
        select(*columns)
        .where(_unsent(unsent))
        .distinct(unsent.c.chat_id)
        .order_by(unsent.c.chat_id, unsent.c.id)
    )


_CALLBACK: ColumnElement[str] = literal_column(f"'{OutboxMethod.ANSWER_CALLBACK.value}'")
_NEVER = literal(datetime(1970, 1, 1, tzinfo=UTC), UtcDateTime())


def _paced(due: FromClause) -> ColumnElement[bool]:
    """The head's previous message (callback answers aside) went out at least a pace ago, or it is a callback answer.

    One backward probe of the ``(chat_id, id)`` index per head looked at.
    """
    previous = _table.alias("previous")
    last_sent = (
        select(previous.c.sent_at)
        .where(previous.c.chat_id == due.c.chat_id, previous.c.id < due.c.id, previous.c.method != _CALLBACK)
        .order_by(previous.c.id.desc())
        .limit(1)
        .correlate(due)
        .scalar_subquery()
    )
    paced_since = case(
        (due.c.chat_id < 0, bindparam("group_paced_since", type_=UtcDateTime())),
        else_=bindparam("chat_paced_since", type_=UtcDateTime()),
    )
    return or_(due.c.method == _CALLBACK, func.coalesce(last_sent, _NEVER) <= paced_since)


def _claim_statement(dialect: str, paced: bool = False) -> Update:
    """Mark the oldest due heads ``sending`` with a lease.

    The due heads are picked (and limited) first. On PostgreSQL each is then locked with
    ``SKIP LOCKED`` and checked again, so a head that another relay is claiming, or claimed or
    finished meanwhile, is left out. SQLite has a single writer that took its lock before reading.
    ``paced``: a head is due only once its chat's pace has passed (see :func:`_paced`); the due
    heads are sorted first, behind ``OFFSET 0`` so that the pace is looked up only for the heads
    the limit takes, not for the whole backlog.
    """
    if dialect == "postgresql":
        heads = _postgresql_heads(paced).subquery("heads")
    else:
        heads = (_SQLITE_PACED_HEADS if paced else _SQLITE_HEADS).subquery("heads")
    due_heads = (
        select(heads.c.id)
        .where(heads.c.next_attempt_at <= bindparam("now"))
        .order_by(heads.c.id)
        .limit(bindparam("limit", type_=Integer))
        .correlate(None)
    )
    if paced:
        due = (
            select(heads.c.id, heads.c.chat_id, heads.c.method)
            .where(heads.c.next_attempt_at <= bindparam("now"))
            .order_by(heads.c.id)
            .offset(0)
            .subquery("due")
        )
        due_heads = select(due.c.id).where(_paced(due)).limit(bindparam("limit", type_=Integer)).correlate(None)
    claimed = due_heads
    if dialect == "postgresql":
        claimed = (
            select(_table.c.id)
            .where(_table.c.id.in_(due_heads.scalar_subquery()), _unsent(_table), _table.c.next_attempt_at <= bindparam("now"))
            .with_for_update(skip_locked=True)
            .correlate(None)
        )
    return (
        update(_table)
        .where(_table.c.id.in_(claimed.scalar_subquery()))
        .values(status=OutboxStatus.SENDING.value, next_attempt_at=bindparam("lease_until"), attempts=_table.c.attempts + 1)
        .returning(_table.c.id, _table.c.chat_id, _table.c.method, _table.c.payload, _table.c.attempts)
    )


_CLAIM = {(dialect, paced): _claim_statement(dialect, paced) for dialect in ("postgresql", "sqlite") for paced in (False, True)}
_EXTEND_LEASE = (
    update(_table)
    .where(_table.c.id.in_(bindparam("ids", expanding=True)), _table.c.status == OutboxStatus.SENDING.value)
    .values(next_attempt_at=bindparam("lease_until"))
)
_RECORD = (
    update(_table)
    .where(_table.c.id == bindparam("item_id"))
    .values(
        status=bindparam("new_status"),
        next_attempt_at=func.coalesce(bindparam("retry_at", type_=_table.c.next_attempt_at.type), _table.c.next_attempt_at),
        sent_at=bindparam("delivered_at", type_=_table.c.sent_at.type),
        last_error=bindparam("error", type_=_table.c.last_error.type),
    )
)


class SqlAlchemyOutboxQueue:
    """Claims outbox rows so that each is sent by one relay at a time, in order within its chat.

    A claim marks the row ``sending`` with a lease (``next_attempt_at`` moved ahead). Only a
    chat's oldest unfinished row can be claimed, so a chat's messages go out one after another;
    on PostgreSQL ``FOR UPDATE SKIP LOCKED`` keeps concurrent relays off each other's rows. The
    lease is short and the relay renews it while it sends (:meth:`extend_lease`), so a relay that
    dies mid-send holds its chat back only until the lease expires; then the row is claimed again.

    Errors that mean the database cannot be reached now are raised as
    :class:`~durabot.outbox.OutboxUnavailableError`; others as the driver raised them.

    Args:
        database: Where the outbox lives.
        clock: Where the queue reads the time.
        chat_rate: Messages per second to one private chat, kept by every relay together (groups:
            20 a minute); ``None`` or 0 for no pace.
        connections: At most this many of the queue's transactions at once (a batch's deliveries
            are recorded concurrently), so the relay takes a known share of the connection pool.
    """

    def __init__(
        self, database: Database, clock: Clock = utc_now, chat_rate: float | None = None, connections: int = RELAY_CONNECTIONS
    ) -> None:
        self._database = database
        self._clock = clock
        self._gate = asyncio.Semaphore(connections)
        self._pace = timedelta(seconds=1 / chat_rate) if chat_rate else None
        self._claim = _CLAIM["sqlite" if database.is_sqlite else "postgresql", self._pace is not None]

    async def claim(self, limit: int, lease: timedelta) -> list[OutboxItem]:
        """Claim up to ``limit`` due heads, at most one per chat, oldest first."""
        now = self._clock()
        values: dict[str, Any] = {"now": now, "lease_until": now + lease, "limit": limit}
        if self._pace is not None:
            values |= {"chat_paced_since": now - self._pace, "group_paced_since": now - GROUP_PACE}
        with unavailable_as_port_error():
            async with self._one_statement() as connection:
                rows = (await connection.execute(self._claim, values)).all()
        items = [OutboxItem(r.id, r.chat_id, r.method, r.payload, r.attempts) for r in rows]
        return sorted(items, key=lambda item: item.id)

    async def extend_lease(self, item_ids: Sequence[int], lease: timedelta) -> None:
        """Keep the claims on rows still being sent for ``lease`` from now (a relay renews them while it sends)."""
        if not item_ids:
            return
        with unavailable_as_port_error():
            async with self._one_statement() as connection:
                await connection.execute(_EXTEND_LEASE, {"ids": list(item_ids), "lease_until": self._clock() + lease})

    async def mark_sent(self, item_id: int) -> None:
        """The message was delivered."""
        await self._record(item_id, OutboxStatus.SENT, sent_at=self._clock())

    async def retry_at(self, item_id: int, when: datetime, error: str) -> None:
        """Sending failed for now; try again at ``when``."""
        await self._record(item_id, OutboxStatus.PENDING, retry_at=when, error=error[:ERROR_LENGTH])

    async def dead_letter(self, item_id: int, error: str) -> None:
        """Sending can never succeed (blocked, bad request); keep the row and the reason."""
        await self._record(item_id, OutboxStatus.DEAD, error=error[:ERROR_LENGTH])

    async def _record(
        self,
        item_id: int,
        status: OutboxStatus,
        *,
        retry_at: datetime | None = None,
        sent_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        values = {"item_id": item_id, "new_status": status.value, "retry_at": retry_at, "delivered_at": sent_at, "error": error}
        with unavailable_as_port_error():
            async with self._one_statement() as connection:
                await connection.execute(_RECORD, values)


    @contextlib.asynccontextmanager
    async def _one_statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one of the queue's operations, each of which is a single statement.

        On PostgreSQL the statement commits on its own (autocommit: no BEGIN and COMMIT round trips);
        on SQLite it runs in a transaction of its own, which takes the write lock first.
        """
        async with self._gate:
            if self._database.is_postgresql:
                async with self._database.engine.connect() as connection:
                    yield await connection.execution_options(isolation_level="AUTOCOMMIT")
            else:
                async with self._database.transaction() as connection:
                    yield connection


@contextlib.contextmanager
def unavailable_as_port_error() -> Iterator[None]:
    """Raise a database that cannot be reached now as the port's :class:`OutboxUnavailableError`."""
    try:
        yield
    except Exception as error:
        if is_unavailable(error):
            raise OutboxUnavailableError(describe(error)) from error
        raise
