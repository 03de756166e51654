"""Migrations: upgrading an empty database to head gives exactly the schema the models declare."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from durabot.storage.migrate import current_revision, upgrade
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
        assert schema["telegram_updates"]["pk"] == ["update_id"]
        if database.is_sqlite:
            async with database.engine.connect() as connection:
                autoincrement = set(await connection.run_sync(_sqlite_autoincrement_tables))
            declared = {t.name for t in Base.metadata.sorted_tables if t.dialect_options["sqlite"]["autoincrement"]}
            assert autoincrement == declared == {"conversation_states", "user_machines", "outbox_messages"}
    finally:
        await database.dispose()


async def test_upgrade_is_idempotent(unmigrated_db: ScratchDatabase) -> None:
    database = unmigrated_db.open()
    try:
        await upgrade(database)
        first = await current_revision(database)
        await upgrade(database)
        assert await current_revision(database) == first == "0003"
    finally:
        await database.dispose()
