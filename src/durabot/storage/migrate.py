"""Bringing a database's schema up to date with Alembic, from inside the running service or the CLI."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from durabot.storage.database import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """Alembic's configuration pointing at durabot's migrations, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate ``database`` to ``revision`` (the latest by default), in one transaction."""

    def _upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with database.engine.connect() as connection:
        await connection.run_sync(_upgrade)
        await connection.commit()


async def current_revision(database: Database) -> str | None:
    """The revision the database is at, or ``None`` if it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with database.engine.connect() as connection:
        return await connection.run_sync(_read)


def head_revision() -> str | None:
    """The newest revision durabot's migrations know."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def has_tables(database: Database, *names: str) -> bool:
    """Whether every one of ``names`` exists in the database."""
    from sqlalchemy import inspect

    def _check(connection: Connection) -> bool:
        return set(names) <= set(inspect(connection).get_table_names())

    async with database.engine.connect() as connection:
        return await connection.run_sync(_check)
