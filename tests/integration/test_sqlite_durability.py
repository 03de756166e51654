"""SQLite is opened durable: WAL journal, full sync, foreign keys on, write lock taken at BEGIN."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sqlalchemy import text

from durabot.config import DEFAULT_DATABASE_URL, Settings
from durabot.storage.database import Database


async def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'durable.sqlite3'}")
    try:
        async with database.engine.connect() as connection:
            pragmas = {
                name: (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragmas == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 30000}
    finally:
        await database.dispose()


async def test_a_transaction_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    holder = Database(f"sqlite:///{path}")
    try:
        async with holder.engine.begin() as held:
            await held.execute(text("SELECT 1"))  # only a read, yet BEGIN IMMEDIATE took the write lock
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
    finally:
        await holder.dispose()


def test_database_url_defaults_to_a_sqlite_file_in_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert Settings(_env_file=None).database_url == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///durabot.sqlite3"
    assert Settings(database_url="postgresql://u@h/db").database_url == "postgresql+asyncpg://u@h/db"
