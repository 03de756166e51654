"""The inbox in ``telegram_updates``: updates identified by bot, ``update_id`` and content, kept until handled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import JSON, ColumnElement, String, Table, bindparam, cast, delete, func, insert, literal, null, select, union_all, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.engine.events import Event, IgnoredUpdate, Received, fingerprint
from durabot.engine.ports import Arrival, PendingUpdate
from durabot.sanitise import storable_json, storable_text
from durabot.storage.tables import TelegramUpdateRow

log = structlog.get_logger("durabot.storage")

LEGACY_FINGERPRINT = ""
"""The fingerprint of updates stored before fingerprints were kept: it matches any redelivery."""

IGNORED = "ignored"
REDACTED_RAW: dict[str, Any] = {"redacted": True}

UPDATES: Table = TelegramUpdateRow.__table__  # type: ignore[assignment]
_u = UPDATES.c
_NULLABLE_JSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""The ``event`` column's values: ``None`` (an ignored update has no event) is SQL NULL, not JSON ``null``."""

_KNOWN = select(_u.fingerprint, literal(0).label("waiting")).where(
    _u.bot_id == bindparam("bot_id"), _u.update_id == bindparam("update_id")
)
_FIRST_WAITING = (
    select(_u.id).where(_u.chat_id == bindparam("chat_id"), _u.processed_at.is_(None)).limit(1).subquery()
)
_ARRIVAL = union_all(_KNOWN, select(cast(null(), String(64)), literal(1)).select_from(_FIRST_WAITING))
"""The fingerprints stored under the update's id, and one row more if its chat has an update waiting."""

_NEXT_PENDING = (
    select(_u.id, _u.event)
    .where(_u.chat_id == bindparam("chat_id"), _u.processed_at.is_(None))
    .order_by(_u.update_id, _u.id)
    .limit(2)
)
_INSERT_HANDLED = insert(UPDATES).values(event=bindparam("event", type_=_NULLABLE_JSON))
"""A plain INSERT: SQLAlchemy caches its compiled form (a dialect's ON CONFLICT insert it compiles every time)."""
_MARK_DONE = (
    update(UPDATES)
    .where(_u.id == bindparam("inbox_id"))
    .values(processed_at=bindparam("processed_at"), outcome=bindparam("outcome"), error=bindparam("error"))
)


_INSERT_NEW = {
    dialect: upsert(UPDATES)
    .values(event=bindparam("event", type_=_NULLABLE_JSON))
    .on_conflict_do_nothing(index_elements=["bot_id", "update_id", "fingerprint"])
    .returning(_u.id)
    for dialect, upsert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
"""Updates not stored yet, by dialect (built once: a unit of work opens an inbox on every step)."""


class SqlAlchemyInbox:
    """The inbox in ``telegram_updates``."""

    def __init__(self, connection: AsyncConnection, dialect: str) -> None:
        self._connection = connection
        self._arriving: tuple[Event, tuple[Any, str]] | None = None
        """The update :meth:`arrival` last looked at, with its content and fingerprint (reused by :meth:`record`)."""
        self._insert_new = _INSERT_NEW[dialect]

    async def add(self, items: Sequence[Received], now: datetime, raw: Mapping[int, Any] | None = None) -> int:
        rows = [_inbox_row(item, now, (raw or {}).get(item.update_id)) for item in items]
        new = await self._unknown(rows)
        if not new:
            return 0
        return len((await self._connection.execute(self._insert_new, new)).all())

    async def arrival(self, item: Event, raw: Any = None) -> Arrival:
        self._arriving = (item, stored_content(item, raw))
        parameters = {"bot_id": item.bot_id, "update_id": item.update_id, "chat_id": item.chat_id}
        rows = (await self._connection.execute(_ARRIVAL, parameters)).all()
        known = {row.fingerprint for row in rows if not row.waiting}
        behind = any(row.waiting for row in rows)
        if self._arriving[1][1] in known or LEGACY_FINGERPRINT in known:
            return Arrival(True, behind)
        if known:
            log.warning("inbox.update_id_reused", bot_id=item.bot_id, update_id=item.update_id)
        return Arrival(False, behind)

    async def record(self, item: Event, now: datetime, raw: Any, outcome: str, error: str | None = None) -> None:
        content = self._arriving[1] if self._arriving and self._arriving[0] is item else None
        row = {**_inbox_row(item, now, raw, content), "processed_at": now, "outcome": outcome, "error": error}
        await self._connection.execute(_INSERT_HANDLED, row)

    async def _unknown(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows not stored yet, each once; a known id with other content is logged as reused."""
        stored: dict[tuple[int, int], set[str]] = {}
        for bot_id in {row["bot_id"] for row in rows}:
            ids = [row["update_id"] for row in rows if row["bot_id"] == bot_id]
            query = select(_u.update_id, _u.fingerprint).where(_u.bot_id == bot_id, _u.update_id.in_(ids))
            for update_id, known in (await self._connection.execute(query)).all():
                stored.setdefault((bot_id, update_id), set()).add(known)
        new: list[dict[str, Any]] = []
        for row in sorted(rows, key=lambda r: r["update_id"]):
            known = stored.setdefault((row["bot_id"], row["update_id"]), set())
            if row["fingerprint"] in known or LEGACY_FINGERPRINT in known:
                continue
            if known:
                log.warning("inbox.update_id_reused", bot_id=row["bot_id"], update_id=row["update_id"])
            known.add(row["fingerprint"])
            new.append(row)
        return new

    async def next_pending(self, chat_id: int) -> PendingUpdate | None:
        found = (await self._connection.execute(_NEXT_PENDING, {"chat_id": chat_id})).all()
        if not found:
            return None
        return PendingUpdate(found[0].id, Event.from_json(found[0].event), more=len(found) > 1)

    async def chats_with_pending(self, limit: int = 100) -> list[int]:
        query = (
            select(_u.chat_id)
            .where(_u.processed_at.is_(None), _u.chat_id.is_not(None))
            .group_by(_u.chat_id)
            .order_by(func.min(_u.id))
            .limit(limit)
        )
        return [int(chat_id) for chat_id in (await self._connection.execute(query)).scalars() if chat_id is not None]

    async def mark_done(self, inbox_id: int, outcome: str, now: datetime, error: str | None = None) -> None:
        parameters = {"inbox_id": inbox_id, "processed_at": now, "outcome": outcome, "error": error}
        await self._connection.execute(_MARK_DONE, parameters)

    async def redact(self, processed_before: datetime) -> int:
        return await self._redact(_u.processed_at < processed_before)

    async def forget_user(self, user_id: int) -> int:
        return await self._redact(_u.user_id == user_id, _u.processed_at.is_not(None))

    async def _redact(self, *where: ColumnElement[bool]) -> int:
        still_there = _u.raw != REDACTED_RAW
        result = await self._connection.execute(
            update(UPDATES).where(*where, still_there).values(raw=REDACTED_RAW, event=null())
        )
        return int(result.rowcount)

    async def prune(self, processed_before: datetime) -> int:
        result = await self._connection.execute(delete(UPDATES).where(_u.processed_at < processed_before))
        return int(result.rowcount)


def stored_content(item: Received, raw: Any) -> tuple[Any, str]:
    """What is stored of an update's JSON (what PostgreSQL can't store replaced), and its fingerprint."""
    content = storable_json(raw if raw is not None else _default_raw(item))
    return content, fingerprint(content)


def _inbox_row(item: Received, now: datetime, raw: Any, content: tuple[Any, str] | None = None) -> dict[str, Any]:
    """The ``telegram_updates`` values of one received update (``content``: its :func:`stored_content`, if known)."""
    stored, digest = content or stored_content(item, raw)
    row: dict[str, Any] = {
        "bot_id": item.bot_id,
        "update_id": item.update_id,
        "fingerprint": digest,
        "chat_id": item.chat_id,
        "user_id": item.user_id,
        "raw": stored,
        "received_at": now,
    }
    if isinstance(item, IgnoredUpdate):
        return {**row, "event": None, "processed_at": now, "outcome": IGNORED, "error": storable_text(item.reason)}
    return {**row, "event": storable_json(item.to_json()), "processed_at": None, "outcome": None, "error": None}


def _default_raw(item: Received) -> dict[str, Any]:
    if isinstance(item, IgnoredUpdate):
        return {"update_id": item.update_id, "ignored": item.reason}
    return item.to_json()
