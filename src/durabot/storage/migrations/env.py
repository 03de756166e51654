"""Alembic environment: runs migrations on a connection handed over by durabot, or on DATABASE_URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from durabot.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,  # a migration that refuses (0003 with orphans) keeps the ones before it
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_own_engine() -> None:
    from durabot.config import Settings
    from durabot.storage.database import Database

    database = Database(config.get_main_option("sqlalchemy.url") or Settings().database_url)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await database.dispose()


if context.is_offline_mode():
    raise SystemExit("durabot's migrations run online only: use `durabot migrate`.")

handed_over = config.attributes.get("connection")
if handed_over is not None:
    _run(handed_over)
else:
    asyncio.run(_run_on_own_engine())
