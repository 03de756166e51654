"""The relay's side of the outbox: claim the head of each chat's queue, then record how sending went."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import aliased

from durabot.engine.runner import Clock, utc_now
from durabot.storage.database import Database
from durabot.storage.tables import OutboxMessageRow

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
DEAD = "dead"


@dataclass(frozen=True)
class OutboxItem:
    """A claimed message: what to call, with what, and how many attempts it has had (this one included)."""

    id: int
    chat_id: int
    method: str
    payload: dict[str, Any]
    attempts: int


class SqlAlchemyOutboxQueue:
    """Claims outbox rows so that each is sent by one relay at a time, in order within its chat.

    A claim marks the row ``sending`` with a lease (``next_attempt_at`` moved ahead). Only a
    chat's oldest unfinished row can be claimed, so a chat's messages go out one after another;
    on PostgreSQL ``FOR UPDATE SKIP LOCKED`` keeps concurrent relays off each other's rows. The
    lease is short and the relay renews it while it sends (:meth:`extend_lease`), so a relay that
    dies mid-send holds its chat back only until the lease expires; then the row is claimed again.
    """

    def __init__(self, database: Database, clock: Clock = utc_now) -> None:
        self._database = database
        self._clock = clock

    async def claim(self, limit: int, lease: timedelta) -> list[OutboxItem]:
        """Claim up to ``limit`` due rows, at most one per chat."""
        now = self._clock()
        row, earlier = OutboxMessageRow, aliased(OutboxMessageRow)
        unfinished = (PENDING, SENDING)
        is_head = ~exists().where(
            and_(earlier.chat_id == row.chat_id, earlier.id < row.id, earlier.status.in_(unfinished))
        )
        due = (
            select(row.id)
            .where(row.status.in_(unfinished), row.next_attempt_at <= now, is_head)
            .order_by(row.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claimed = (
            update(row)
            .where(row.id.in_(due.scalar_subquery()))
            .values(status=SENDING, next_attempt_at=now + lease, attempts=row.attempts + 1)
            .returning(row.id, row.chat_id, row.method, row.payload, row.attempts)
        )
        async with self._database.transaction() as connection:
            rows = (await connection.execute(claimed)).all()
        items = [OutboxItem(r.id, r.chat_id, r.method, r.payload, r.attempts) for r in rows]
        return sorted(items, key=lambda item: item.id)

    async def extend_lease(self, item_ids: Sequence[int], lease: timedelta) -> None:
        """Keep the claims on rows still being sent for ``lease`` from now (a relay renews them while it sends)."""
        if not item_ids:
            return
        row = OutboxMessageRow
        renewed = (
            update(row)
            .where(row.id.in_(list(item_ids)), row.status == SENDING)
            .values(next_attempt_at=self._clock() + lease)
        )
        async with self._database.transaction() as connection:
            await connection.execute(renewed)

    async def mark_sent(self, item_id: int) -> None:
        """The message was delivered."""
        await self._set(item_id, status=SENT, sent_at=self._clock(), last_error=None)

    async def retry_at(self, item_id: int, when: datetime, error: str) -> None:
        """Sending failed for now; try again at ``when``."""
        await self._set(item_id, status=PENDING, next_attempt_at=when, last_error=error[:2000])

    async def dead_letter(self, item_id: int, error: str) -> None:
        """Sending can never succeed (blocked, bad request); keep the row and the reason."""
        await self._set(item_id, status=DEAD, last_error=error[:2000])

    async def _set(self, item_id: int, **values: Any) -> None:
        async with self._database.transaction() as connection:
            await connection.execute(update(OutboxMessageRow).where(OutboxMessageRow.id == item_id).values(**values))
