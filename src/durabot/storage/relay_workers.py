"""The relays of a bot in the database: each heartbeats in ``relay_workers``, and counts the live ones to split the send rate.

Plain SQLAlchemy Core on the database's engine, every statement built once. A relay whose
heartbeat is older than ``live_for`` no longer counts; rows dead for :data:`FORGET_AFTER` are deleted.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from durabot.clock import Clock, utc_now
from durabot.storage.database import Database
from durabot.storage.outbox_queue import unavailable_as_port_error
from durabot.storage.tables import RelayWorkerRow

FORGET_AFTER = timedelta(hours=1)
"""How long the row of a relay that stopped heartbeating is kept (for an operator to see) before it is deleted."""

_table = cast(Table, RelayWorkerRow.__table__)


def _upsert(dialect: str) -> postgresql.Insert | sqlite.Insert:
    """Insert this relay's row, or move its heartbeat forward if it is there."""
    insert = postgresql.insert(_table) if dialect == "postgresql" else sqlite.insert(_table)
    return insert.on_conflict_do_update(
        index_elements=[_table.c.bot_id, _table.c.worker_id], set_={"heartbeat_at": insert.excluded.heartbeat_at}
    )


_UPSERT = {dialect: _upsert(dialect) for dialect in ("postgresql", "sqlite")}
_FORGET = delete(_table).where(_table.c.bot_id == bindparam("bot"), _table.c.heartbeat_at < bindparam("forget_before"))
_LIVE = (
    select(func.count())
    .select_from(_table)
    .where(_table.c.bot_id == bindparam("bot"), _table.c.heartbeat_at > bindparam("live_since"))
)
_UNREGISTER = delete(_table).where(_table.c.bot_id == bindparam("bot"), _table.c.worker_id == bindparam("worker"))


def new_worker_id() -> str:
    """An id for this process's relay that an operator can place: host, process id and a random part."""
    return f"{socket.gethostname()[:80]}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


class RelayWorkers:
    """This relay's row among its bot's relays (a :class:`~durabot.transport.rate_share.RelayRegistry`).

    Heartbeats are written with ``clock``: the workers' clocks must agree to well within ``live_for``.

    Args:
        database: Where the rows live.
        bot_id: The bot the relay sends for (the number before the colon of its token).
        live_for: How old a heartbeat may be for its relay still to count (a few heartbeat intervals).
        worker_id: This relay's id; a new random one by default.
        clock: Where heartbeats read the time.

    Raises:
        OutboxUnavailableError: from any method, when the database cannot be reached now.
    """

    def __init__(
        self,
        database: Database,
        bot_id: int,
        live_for: timedelta,
        worker_id: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._database = database
        self.bot_id = bot_id
        self.worker_id = worker_id or new_worker_id()
        self._clock = clock
        self._live_for = live_for
        self._upsert = _UPSERT["sqlite" if database.is_sqlite else "postgresql"]

    async def heartbeat(self) -> int:
        """Record that this relay is alive (registering it if need be); returns how many are live, itself included."""
        now = self._clock()
        row = {"bot_id": self.bot_id, "worker_id": self.worker_id, "started_at": now, "heartbeat_at": now}
        with unavailable_as_port_error():
            async with self._database.transaction() as connection:
                await connection.execute(self._upsert, row)
                await connection.execute(_FORGET, {"bot": self.bot_id, "forget_before": now - FORGET_AFTER})
                live = await connection.scalar(_LIVE, {"bot": self.bot_id, "live_since": now - self._live_for})
        return max(1, int(live or 0))

    async def live(self) -> int:
        """How many of the bot's relays are live now (this one included if it heartbeats)."""
        with unavailable_as_port_error():
            async with self._database.engine.connect() as connection:
                live = await connection.scalar(_LIVE, {"bot": self.bot_id, "live_since": self._clock() - self._live_for})
        return int(live or 0)

    async def unregister(self) -> None:
        """This relay stops: delete its row, so the others take its share at their next heartbeat."""
        with unavailable_as_port_error():
            async with self._database.transaction() as connection:
                await connection.execute(_UNREGISTER, {"bot": self.bot_id, "worker": self.worker_id})

