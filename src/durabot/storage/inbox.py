"""The inbox in ``telegram_updates``: updates identified by bot, ``update_id`` and content, kept until handled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, delete, func, null, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from durabot.engine.events import Event, IgnoredUpdate, Received, fingerprint
from durabot.engine.ports import PendingUpdate
from durabot.sanitise import storable_json, storable_text
from durabot.storage.tables import TelegramUpdateRow

log = structlog.get_logger("durabot.storage")

LEGACY_FINGERPRINT = ""
"""The fingerprint of updates stored before fingerprints were kept: it matches any redelivery."""

IGNORED = "ignored"
REDACTED_RAW: dict[str, Any] = {"redacted": True}


class SqlAlchemyInbox:
    """The inbox in ``telegram_updates``."""

    def __init__(self, session: AsyncSession, dialect: str) -> None:
        self._session = session
        self._insert = pg_insert if dialect == "postgresql" else sqlite_insert

    async def add(self, items: Sequence[Received], now: datetime, raw: Mapping[int, Any] | None = None) -> int:
        rows = [_inbox_row(item, now, (raw or {}).get(item.update_id)) for item in items]
        new = await self._unknown(rows)
        if not new:
            return 0
        statement = (
            self._insert(TelegramUpdateRow)
            .values(new)
            .on_conflict_do_nothing(index_elements=["bot_id", "update_id", "fingerprint"])
        )
        result = await self._session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _unknown(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows not stored yet, each once; a known id with other content is logged as reused."""
        stored: dict[tuple[int, int], set[str]] = {}
        for bot_id in {row["bot_id"] for row in rows}:
            ids = [row["update_id"] for row in rows if row["bot_id"] == bot_id]
            query = select(TelegramUpdateRow.update_id, TelegramUpdateRow.fingerprint).where(
                TelegramUpdateRow.bot_id == bot_id, TelegramUpdateRow.update_id.in_(ids)
            )
            for update_id, known in (await self._session.execute(query)).all():
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
        query = (
            select(TelegramUpdateRow.id, TelegramUpdateRow.event)
            .where(TelegramUpdateRow.chat_id == chat_id, TelegramUpdateRow.processed_at.is_(None))
            .order_by(TelegramUpdateRow.update_id, TelegramUpdateRow.id)
            .limit(2)
        )
        found = (await self._session.execute(query)).all()
        if not found:
            return None
        return PendingUpdate(found[0].id, Event.from_json(found[0].event), more=len(found) > 1)

    async def chats_with_pending(self, limit: int = 100) -> list[int]:
        query = (
            select(TelegramUpdateRow.chat_id)
            .where(TelegramUpdateRow.processed_at.is_(None), TelegramUpdateRow.chat_id.is_not(None))
            .group_by(TelegramUpdateRow.chat_id)
            .order_by(func.min(TelegramUpdateRow.id))
            .limit(limit)
        )
        return [int(chat_id) for chat_id in await self._session.scalars(query) if chat_id is not None]

    async def mark_done(self, inbox_id: int, outcome: str, now: datetime, error: str | None = None) -> None:
        await self._session.execute(
            update(TelegramUpdateRow)
            .where(TelegramUpdateRow.id == inbox_id)
            .values(processed_at=now, outcome=outcome, error=error)
        )

    async def redact(self, processed_before: datetime) -> int:
        return await self._redact(TelegramUpdateRow.processed_at < processed_before)

    async def forget_user(self, user_id: int) -> int:
        return await self._redact(TelegramUpdateRow.user_id == user_id, TelegramUpdateRow.processed_at.is_not(None))

    async def _redact(self, *where: ColumnElement[bool]) -> int:
        still_there = TelegramUpdateRow.raw != REDACTED_RAW
        result = await self._session.execute(
            update(TelegramUpdateRow).where(*where, still_there).values(raw=REDACTED_RAW, event=null())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def prune(self, processed_before: datetime) -> int:
        result = await self._session.execute(
            delete(TelegramUpdateRow).where(TelegramUpdateRow.processed_at < processed_before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _inbox_row(item: Received, now: datetime, raw: Any) -> dict[str, Any]:
    """The ``telegram_updates`` values of one received update; what PostgreSQL can't store is replaced."""
    content = storable_json(raw if raw is not None else _default_raw(item))
    row: dict[str, Any] = {
        "bot_id": item.bot_id,
        "update_id": item.update_id,
        "fingerprint": fingerprint(content),
        "chat_id": item.chat_id,
        "user_id": item.user_id,
        "raw": content,
        "received_at": now,
    }
    if isinstance(item, IgnoredUpdate):
        return {**row, "event": null(), "processed_at": now, "outcome": IGNORED, "error": storable_text(item.reason)}
    return {**row, "event": storable_json(item.to_json()), "processed_at": None, "outcome": None, "error": None}


def _default_raw(item: Received) -> dict[str, Any]:
    if isinstance(item, IgnoredUpdate):
        return {"update_id": item.update_id, "ignored": item.reason}
    return item.to_json()
