"""A step's own statements on PostgreSQL, sent through asyncpg's prepared statements inside the unit of work's transaction.

SQLAlchemy's execution path costs about four times the driver's per statement (231 µs against
64 µs of CPU for a one-row read here), and a step runs seven of these on every update. The rest
of the unit of work — the chat lock, which begins the transaction, domain stores, cold paths —
stays on SQLAlchemy Core; these stores only override the per-step methods of the Core ones and
write the same rows. The driver's errors carry the same SQLSTATEs, so they are classified alike;
parameters never reach a log line from here (the engine logs the error's type and redacted text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog

from durabot.engine.conversation import Conversation
from durabot.engine.events import Event
from durabot.engine.ports import Arrival, PendingUpdate, StaleConversationError
from durabot.engine.writes import ConversationWrite, WriteSet
from durabot.flows.model import Answers
from durabot.outbox import encode
from durabot.replies import Outgoing
from durabot.sanitise import storable_json
from durabot.storage.inbox import LEGACY_FINGERPRINT, SqlAlchemyInbox, stored_content
from durabot.storage.repositories import SqlAlchemyConversationStore, SqlAlchemyOutbox

log = structlog.get_logger("durabot.storage")

Driver = Callable[[], Awaitable[asyncpg.Connection]]
"""Gives the asyncpg connection of the unit of work, its transaction begun."""

_CONVERSATION_COLUMNS = (
    "id, user_id, chat_id, conversation_type, current_step, state_data, started_at, updated_at, expires_at, version, flow_version"
)
_OF_CHAT = f"SELECT {_CONVERSATION_COLUMNS} FROM conversation_states WHERE user_id = $1 AND chat_id = $2"
_ARRIVAL = (
    "SELECT fingerprint, 0 AS waiting FROM telegram_updates WHERE bot_id = $1 AND update_id = $2 "
    "UNION ALL SELECT NULL, 1 FROM (SELECT id FROM telegram_updates WHERE chat_id = $3 AND processed_at IS NULL LIMIT 1) AS w"
)
_NEXT_PENDING = (
    "SELECT id, event FROM telegram_updates WHERE chat_id = $1 AND processed_at IS NULL ORDER BY update_id, id LIMIT 2"
)

# The writes, with named placeholders: each is a statement of its own, and a part of the combined one.
_CONVERSATION_WRITES = {
    "insert": (
        f"INSERT INTO conversation_states ({_CONVERSATION_COLUMNS}) VALUES (:conversation_id, :user_id, :chat_id, "
        ":flow_name, :current_step, :state_data, :started_at, :updated_at, :expires_at, :version, :flow_version) RETURNING 1"
    ),
    "update": (
        "UPDATE conversation_states SET current_step = :current_step, state_data = :state_data, updated_at = :updated_at, "
        "expires_at = :expires_at, flow_version = :flow_version, version = :version "
        "WHERE id = :conversation_id AND version = :expected_version RETURNING 1"
    ),
    "delete": "DELETE FROM conversation_states WHERE id = :conversation_id RETURNING 1",
}
_OUTBOX_WRITE = (
    "INSERT INTO outbox_messages (chat_id, method, payload, status, attempts, next_attempt_at, source_update_id, created_at) "
    "SELECT :chat_id, m, p, 'pending', 0, :now, :update_id, :now "
    "FROM unnest(:methods::varchar[], :payloads::jsonb[]) AS queued(m, p)"
)
_INBOX_WRITES = {
    "record": (
        "INSERT INTO telegram_updates (bot_id, update_id, fingerprint, chat_id, user_id, raw, event, received_at, "
        "processed_at, outcome, error) VALUES (:bot_id, :update_id, :fingerprint, :chat_id, :sender_id, :raw, :event, "
        ":now, :now, :outcome, :error)"
    ),
    "mark": "UPDATE telegram_updates SET processed_at = :now, outcome = :outcome, error = :error WHERE id = :inbox_id",
}


def numbered(statement: str) -> tuple[str, tuple[str, ...]]:
    """``statement`` with its ``:name`` placeholders as asyncpg's ``$1, $2, …`` (in order of first use), and the names."""
    names: list[str] = []

    def number(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"(?<!:):([a-z_]+)", number, statement), tuple(names)


def combined_statement(conversation: str | None, inbox: str) -> tuple[str, tuple[str, ...]]:
    """One statement for a step's writes — its conversation change (if any), its replies, its update's outcome — and its parameters' names.

    Data-modifying CTEs: all parts run, or (the statement failing) none. It returns how many
    conversation rows changed, which a version-checked update or an insert must make 1.
    """
    parts = [f"outbox AS ({_OUTBOX_WRITE})", f"inbox AS ({_INBOX_WRITES[inbox]})"]
    if conversation is None:
        return numbered(f"WITH {', '.join(parts)} SELECT 1")
    parts.insert(0, f"conversation AS ({_CONVERSATION_WRITES[conversation]})")
    return numbered(f"WITH {', '.join(parts)} SELECT count(*) FROM conversation")


_ALONE = {key: numbered(statement) for key, statement in (*_CONVERSATION_WRITES.items(), *_INBOX_WRITES.items())}
_ALONE["outbox"] = numbered(_OUTBOX_WRITE)
_COMBINED = {
    (conversation, inbox): combined_statement(conversation, inbox)
    for conversation in (None, "insert", "update", "delete")
    for inbox in ("record", "mark")
}


async def _run(connection: asyncpg.Connection, statement: tuple[str, tuple[str, ...]], values: dict[str, Any]) -> Any:
    """Run a numbered statement with its parameters taken by name from ``values``; returns its first value."""
    sql, names = statement
    return await connection.fetchval(sql, *(values[name] for name in names))


def _json(value: Any) -> str:
    """A JSON parameter as SQLAlchemy's JSONB type would send it."""
    return json.dumps(value)


def _conversation_write(write: ConversationWrite) -> tuple[str, dict[str, Any]]:
    """Which conversation write ``write`` is (insert, update or delete), and its parameters."""
    conversation = write.conversation
    if conversation is None:
        return "delete", {"conversation_id": write.id}
    values = {
        "conversation_id": write.id,
        "user_id": conversation.user_id,
        "chat_id": conversation.chat_id,
        "flow_name": conversation.flow_name,
        "current_step": conversation.current_step,
        "state_data": _json(conversation.answers.to_json()),
        "started_at": conversation.started_at,
        "updated_at": conversation.updated_at,
        "expires_at": conversation.expires_at,
        "version": conversation.version,
        "flow_version": conversation.flow_version,
        "expected_version": write.expected_version,
    }
    return ("insert" if write.expected_version is None else "update"), values


def _stale_unless_written(kind: str, changed: Any, conversation_id: int) -> None:
    """An insert or a version-checked update that changed no row found the conversation changed or gone."""
    if kind in ("insert", "update") and changed != 1:
        raise StaleConversationError(f"conversation {conversation_id} changed or vanished meanwhile")


def _outbox_values(chat_id: int, messages: Sequence[Outgoing], update_id: int | None, now: datetime) -> dict[str, Any]:
    methods, payloads = zip(*map(encode, messages), strict=True) if messages else ((), ())
    return {
        "chat_id": chat_id,
        "update_id": update_id,
        "now": now,
        "methods": list(methods),
        "payloads": [_json(payload) for payload in payloads],
    }


def _conversation(row: asyncpg.Record) -> Conversation:
    return Conversation(
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        flow_name=row["conversation_type"],
        flow_version=row["flow_version"],
        answers=Answers.from_json(row["state_data"]),
        started_at=row["started_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
        version=row["version"],
        id=row["id"],
        current_step=row["current_step"],
    )


class PgStepConversations(SqlAlchemyConversationStore):
    """The conversation store, its per-step reads and writes sent through the driver."""

    def __init__(self, driver: Driver, *args: Any) -> None:
        super().__init__(*args)
        self._driver = driver

    async def of_chat(self, user_id: int, chat_id: int) -> list[Conversation]:
        rows = await (await self._driver()).fetch(_OF_CHAT, user_id, chat_id)
        return sorted(map(_conversation, rows), key=lambda c: (c.updated_at, c.id or 0), reverse=True)

    async def apply(self, write: ConversationWrite) -> None:
        kind, values = _conversation_write(write)
        changed = await _run(await self._driver(), _ALONE[kind], values)
        _stale_unless_written(kind, changed, write.id)


class PgStepInbox(SqlAlchemyInbox):
    """The inbox, its per-step look-ups and marks sent through the driver."""

    def __init__(self, driver: Driver, *args: Any) -> None:
        super().__init__(*args)
        self._driver = driver

    async def arrival(self, item: Event, raw: Any = None) -> Arrival:
        self._arriving = (item, stored_content(item, raw))
        rows = await (await self._driver()).fetch(_ARRIVAL, item.bot_id, item.update_id, item.chat_id)
        known = {row["fingerprint"] for row in rows if not row["waiting"]}
        behind = any(row["waiting"] for row in rows)
        if self._arriving[1][1] in known or LEGACY_FINGERPRINT in known:
            return Arrival(True, behind)
        if known:
            log.warning("inbox.update_id_reused", bot_id=item.bot_id, update_id=item.update_id)
        return Arrival(False, behind)

    def recorded(self, item: Event, now: datetime, raw: Any, outcome: str, error: str | None) -> dict[str, Any]:
        """The parameters that store ``item`` already dealt with (its content as :meth:`arrival` found it, if it looked)."""
        stored, digest = self._arriving[1] if self._arriving and self._arriving[0] is item else stored_content(item, raw)
        return {
            "bot_id": item.bot_id,
            "update_id": item.update_id,
            "fingerprint": digest,
            "chat_id": item.chat_id,
            "sender_id": item.user_id,
            "raw": _json(stored),
            "event": _json(storable_json(item.to_json())),
            "now": now,
            "outcome": outcome,
            "error": error,
        }

    async def record(self, item: Event, now: datetime, raw: Any, outcome: str, error: str | None = None) -> None:
        await _run(await self._driver(), _ALONE["record"], self.recorded(item, now, raw, outcome, error))

    async def next_pending(self, chat_id: int) -> PendingUpdate | None:
        found = await (await self._driver()).fetch(_NEXT_PENDING, chat_id)
        if not found:
            return None
        return PendingUpdate(found[0]["id"], Event.from_json(found[0]["event"]), more=len(found) > 1)

    async def mark_done(self, inbox_id: int, outcome: str, now: datetime, error: str | None = None) -> None:
        values = {"inbox_id": inbox_id, "now": now, "outcome": outcome, "error": error}
        await _run(await self._driver(), _ALONE["mark"], values)


class PgStepOutbox(SqlAlchemyOutbox):
    """The outbox, a step's replies queued in one statement through the driver."""

    def __init__(self, driver: Driver, *args: Any) -> None:
        super().__init__(*args)
        self._driver = driver

    async def add(self, chat_id: int, messages: Sequence[Outgoing], update_id: int | None, now: datetime) -> None:
        if messages:
            await _run(await self._driver(), _ALONE["outbox"], _outbox_values(chat_id, messages, update_id, now))


class PgStepWriter:
    """Writes a step's write-set in one statement when it is of the usual shape, through the driver."""

    def __init__(self, driver: Driver, inbox: PgStepInbox) -> None:
        self._driver = driver
        self._inbox = inbox

    async def write(self, writes: WriteSet, event: Event, now: datetime) -> bool:
        """Write ``writes`` in one statement and return ``True``, or return ``False`` if its shape needs the general path.

        The usual shape: at most one conversation change, no tombstones, no domain calls, an outcome.

        Raises:
            StaleConversationError: the conversation changed or vanished since the step loaded it.
        """
        handled = writes.handled
        if handled is None or writes.domain or writes.tombstones_taken or len(writes.conversations) > 1:
            return False
        if handled.inbox_id is None:
            inbox, values = "record", self._inbox.recorded(event, now, handled.raw, handled.outcome, handled.error)
        else:
            inbox, values = "mark", {"inbox_id": handled.inbox_id, "now": now}
            values |= {"outcome": handled.outcome, "error": handled.error}
        values |= _outbox_values(event.chat_id, writes.outgoing, event.update_id, now)
        write = next(iter(writes.conversations.values()), None)
        kind = None
        if write is not None:
            kind, conversation_values = _conversation_write(write)
            values |= conversation_values  # its chat is the event's
        changed = await _run(await self._driver(), _COMBINED[kind, inbox], values)
        if write is not None and kind is not None:
            _stale_unless_written(kind, changed, write.id)
        return True
