"""Shared fixtures: real SQLite and PostgreSQL databases, migrated, one fresh schema per test."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from durabot.clock import FakeClock
from durabot.storage.database import Database
from durabot.storage.migrate import upgrade

os.environ.setdefault("JOURNAL_PATH", "")  # no outage journal unless a test asks for one (it is per process)
os.environ.setdefault("ADMIN_ENABLED", "false")  # no admin port unless a test asks for one (8090 is one per machine)

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something is already listening on, for as long as the test runs."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def pg_url() -> str:
    """The PostgreSQL server the tests use."""
    return os.environ.get("DURABOT_TEST_DATABASE_URL", DEFAULT_PG_URL)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _postgres_reachable() -> str | None:
    probe = Database(pg_url())
    try:
        async with probe.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return None
    except Exception as error:  # any failure to connect means "no server"
        return repr(error)
    finally:
        await probe.dispose()


_pg_problem: list[str | None] = []


def require_postgres() -> None:
    """Skip when no server is reachable — but fail under CI, where PostgreSQL must be there."""
    if not _pg_problem:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # callable inside a running loop
            _pg_problem.append(pool.submit(asyncio.run, _postgres_reachable()).result())
    problem = _pg_problem[0]
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI but unreachable at {pg_url()}: {problem}")
    pytest.skip(f"PostgreSQL not reachable at {pg_url()}: {problem}")


@dataclass
class ScratchDatabase:
    """A database ready for a test, and how to open another handle on the same data."""

    kind: str
    url: str
    schema: str | None = None

    def open(self) -> Database:
        """A new, independent handle (engine and pool) on this test's database."""
        if self.schema is None:
            return Database(self.url)
        return Database(self.url, connect_args={"server_settings": {"search_path": self.schema}})


async def empty_database(kind: str, tmp_path: Path) -> ScratchDatabase:
    """A brand-new, unmigrated database of ``kind``."""
    if kind == "sqlite":
        return ScratchDatabase("sqlite", f"sqlite:///{tmp_path / 'durabot.sqlite3'}")
    schema = f"durabot_test_{uuid.uuid4().hex[:12]}"
    admin = Database(pg_url())
    async with admin.engine.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    return ScratchDatabase("postgresql", pg_url(), schema)


async def drop_database(test_db: ScratchDatabase) -> None:
    """Remove what :func:`empty_database` created (the SQLite file goes with tmp_path)."""
    if test_db.schema is None:
        return
    admin = Database(pg_url())
    async with admin.engine.begin() as connection:
        await connection.execute(text(f'DROP SCHEMA IF EXISTS "{test_db.schema}" CASCADE'))
    await admin.dispose()


@contextlib.asynccontextmanager
async def migrated_database(kind: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database of ``kind`` ("sqlite" or "postgresql"), removed afterwards."""
    if kind == "postgresql":
        require_postgres()
    scratch = await empty_database(kind, tmp_path)
    database = scratch.open()
    try:
        await upgrade(database)
        yield database
    finally:
        await database.dispose()
        await drop_database(scratch)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


@pytest.fixture
async def unmigrated_db(db_kind: str, tmp_path: Path) -> AsyncIterator[ScratchDatabase]:
    test_db = await empty_database(db_kind, tmp_path)
    yield test_db
    await drop_database(test_db)


@pytest.fixture
async def test_db(unmigrated_db: ScratchDatabase) -> ScratchDatabase:
    """A migrated, empty database of each kind."""
    database = unmigrated_db.open()
    await upgrade(database)
    await database.dispose()
    return unmigrated_db


@pytest.fixture
async def postgres_db(tmp_path: Path) -> AsyncIterator[ScratchDatabase]:
    """A migrated, empty PostgreSQL database, for behaviour only PostgreSQL has."""
    require_postgres()
    scratch = await empty_database("postgresql", tmp_path)
    database = scratch.open()
    await upgrade(database)
    await database.dispose()
    yield scratch
    await drop_database(scratch)
