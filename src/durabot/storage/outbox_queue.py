"""The outbox queue on SQLAlchemy: claim the head of each chat's queue, then record how sending went.

The claim reads each chat's head from the partial index on unsent rows (``DISTINCT ON`` on
PostgreSQL, ``GROUP BY … MIN(id)`` on SQLite), so its cost follows the backlog, never the sent
rows the table keeps. Every statement is built once and bound with parameters on each call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Table,
    Update,
    bindparam,
    func,
    literal_column,
    select,
    text,
    update,
)

from durabot.clock import Clock, utc_now
from durabot.outbox import UNFINISHED, OutboxItem, OutboxStatus, OutboxUnavailableError
from durabot.storage.availability import describe, is_unavailable
from durabot.storage.database import Database
from durabot.storage.tables import OutboxMessageRow

ERROR_LENGTH = 2000
"""How much of a failure's description is kept in ``last_error``."""

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


def _postgresql_heads() -> Select[Any]:
    """Each chat's oldest unsent row (its id and when it is due), read in order from the partial index."""
    unsent = _table.alias("unsent")
    return (
        select(unsent.c.id, unsent.c.next_attempt_at)
        .where(_unsent(unsent))
        .distinct(unsent.c.chat_id)
        .order_by(unsent.c.chat_id, unsent.c.id)
    )


def _claim_statement(dialect: str) -> Update:
    """Mark the oldest due heads ``sending`` with a lease.

    The due heads are picked (and limited) first. On PostgreSQL each is then locked with
    ``SKIP LOCKED`` and checked again, so a head that another relay is claiming, or claimed or
    finished meanwhile, is left out. SQLite has a single writer that took its lock before reading.
    """
    heads = (_postgresql_heads() if dialect == "postgresql" else _SQLITE_HEADS).subquery("heads")
    due_heads = (
        select(heads.c.id)
        .where(heads.c.next_attempt_at <= bindparam("now"))
        .order_by(heads.c.id)
        .limit(bindparam("limit", type_=Integer))
        .correlate(None)
    )
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


_CLAIM = {dialect: _claim_statement(dialect) for dialect in ("postgresql", "sqlite")}
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
    """

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._database = database
        self._clock = clock
        self._claim = _CLAIM["sqlite" if database.is_sqlite else "postgresql"]

    async def claim(self, limit: int, lease: timedelta) -> list[OutboxItem]:
        """Claim up to ``limit`` due heads, at most one per chat, oldest first."""
        now = self._clock()
        with _unavailable_as_port_error():
            async with self._database.transaction() as connection:
                rows = (await connection.execute(self._claim, {"now": now, "lease_until": now + lease, "limit": limit})).all()
        items = [OutboxItem(r.id, r.chat_id, r.method, r.payload, r.attempts) for r in rows]
        return sorted(items, key=lambda item: item.id)

    async def extend_lease(self, item_ids: Sequence[int], lease: timedelta) -> None:
        """Keep the claims on rows still being sent for ``lease`` from now (a relay renews them while it sends)."""
        if not item_ids:
            return
        with _unavailable_as_port_error():
            async with self._database.transaction() as connection:
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
        with _unavailable_as_port_error():
            async with self._database.transaction() as connection:
                await connection.execute(_RECORD, values)


@contextlib.contextmanager
def _unavailable_as_port_error() -> Iterator[None]:
    """Raise a database that cannot be reached now as the port's :class:`OutboxUnavailableError`."""
    try:
        yield
    except Exception as error:
        if is_unavailable(error):
            raise OutboxUnavailableError(describe(error)) from error
        raise
