"""Migrations: upgrading an empty database to head gives exactly the schema the models declare."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from durabot.engine.events import Event
from durabot.storage.migrate import current_revision, upgrade
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from durabot.storage.tables import Base
from tests.conftest import ScratchDatabase


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(context, Base.metadata))


def _schema(connection: Connection) -> dict[str, dict[str, Any]]:
    inspector = inspect(connection)
    return {
        table: {
            "columns": sorted((c["name"], c["nullable"]) for c in inspector.get_columns(table)),
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            "indexes": sorted(tuple(i["column_names"]) for i in inspector.get_indexes(table)),
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
        }
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def _sqlite_autoincrement_tables(connection: Connection) -> list[str]:
    rows = connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all()
    return [name for name, sql in rows if "AUTOINCREMENT" in sql.upper()]


async def test_upgrade_head_on_an_empty_database_matches_the_models(unmigrated_db: ScratchDatabase) -> None:
    database = unmigrated_db.open()
    try:
        assert await current_revision(database) is None
        await upgrade(database)
        async with database.engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            schema = await connection.run_sync(_schema)
        assert set(schema) == {table.name for table in Base.metadata.sorted_tables}
        assert ("user_id", "nickname") in schema["user_machines"]["unique"]
        assert ("user_id", "chat_id", "conversation_type") in schema["conversation_states"]["unique"]
        assert schema["telegram_updates"]["pk"] == ["id"]
        assert ("bot_id", "update_id", "fingerprint") in schema["telegram_updates"]["unique"]
        if database.is_sqlite:
            async with database.engine.connect() as connection:
                autoincrement = set(await connection.run_sync(_sqlite_autoincrement_tables))
            declared = {t.name for t in Base.metadata.sorted_tables if t.dialect_options["sqlite"]["autoincrement"]}
            assert autoincrement == declared == {
                "conversation_states",
                "user_machines",
                "outbox_messages",
                "telegram_updates",
                "conversation_tombstones",
                "operators",
                "operator_audit",
            }
    finally:
        await database.dispose()


async def test_upgrade_is_idempotent(unmigrated_db: ScratchDatabase) -> None:
    database = unmigrated_db.open()
    try:
        await upgrade(database)
        first = await current_revision(database)
        await upgrade(database)
        assert await current_revision(database) == first == "0008"
    finally:
        await database.dispose()


LEGACY_UPDATE = text(
    "INSERT INTO telegram_updates (update_id, chat_id, user_id, raw, event, received_at, processed_at) "
    "VALUES (:update_id, 7, 7, :raw, :event, :received, :processed)"
)


async def test_0004_keeps_stored_updates_and_recognises_their_redelivery(unmigrated_db: ScratchDatabase) -> None:
    database = unmigrated_db.open()
    received = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    try:
        await upgrade(database, "0003")
        async with database.engine.begin() as connection:
            for update_id, processed in ((41, received), (40, None)):
                event = json.dumps(Event.message(update_id, 7, 7, "hello").to_json())
                await connection.execute(
                    LEGACY_UPDATE,
                    {"update_id": update_id, "raw": json.dumps({"update_id": update_id}), "event": event,
                     "received": received, "processed": processed},
                )
        await upgrade(database)
        factory = SqlAlchemyUnitOfWorkFactory(database)
        async with factory() as uow:
            pending = await uow.inbox.next_pending(7)
            assert pending is not None and pending.event.update_id == 40
            redelivered = {41: {"update_id": 41, "message": {"text": "hello"}}}
            assert await uow.inbox.add([Event.message(41, 7, 7, "hello")], received, redelivered) == 0
    finally:
        await database.dispose()


LEGACY_MACHINE = text(
    "INSERT INTO user_machines (user_id, nickname, nickname_key, created_at, updated_at) "
    "VALUES (:user_id, :nickname, :key, :at, :at)"
)


async def test_0004_recomputes_nickname_keys_unless_that_would_make_a_clash(unmigrated_db: ScratchDatabase) -> None:
    database = unmigrated_db.open()
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    try:
        await upgrade(database, "0003")
        async with database.engine.begin() as connection:
            for user_id, nickname in ((1, "Press\u200b3"), (2, "Press3"), (2, "Press\u200b3")):
                values = {"user_id": user_id, "nickname": nickname, "key": nickname.casefold(), "at": at}
                await connection.execute(LEGACY_MACHINE, values)
        await upgrade(database)
        async with database.engine.connect() as connection:
            keys = (await connection.execute(text("SELECT user_id, nickname_key FROM user_machines ORDER BY id"))).all()
        assert [tuple(row) for row in keys] == [(1, "press3"), (2, "press3"), (2, "press\u200b3")]
    finally:
        await database.dispose()
