"""Which database errors are "unavailable" (wait and retry) and which are permanent, with errors a real server raises."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from durabot.engine.ports import StaleConversationError
from durabot.storage.availability import describe, is_conflict, is_unavailable
from durabot.storage.database import Database
from tests.conftest import pg_url, require_postgres

@pytest.fixture
async def postgres() -> AsyncIterator[Database]:
    require_postgres()
    database = Database(pg_url())
    yield database
    await database.dispose()


async def server_error(database: Database, sqlstate: str, message: str = "raised by the test") -> DBAPIError:
    """The error SQLAlchemy raises when the server answers a statement with ``sqlstate``."""
    statement = f"DO $$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = '{sqlstate}'; END $$"
    with pytest.raises(DBAPIError) as raised:
        async with database.engine.connect() as connection:
            await connection.execute(text(statement))
    return raised.value


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sqlstate",
    [
        "57P03",  # cannot connect now: starting up, shutting down, in recovery mode
        "57P01",  # admin shutdown
        "57P02",  # crash shutdown
        "53300",  # too many connections
        "08006",  # connection failure
        "08001",  # client cannot connect
        "25006",  # read-only transaction: a standby during failover
    ],
)
async def test_server_errors_that_clear_up_once_the_database_is_back_are_unavailable(
    postgres: Database, sqlstate: str
) -> None:
    error = await server_error(postgres, sqlstate)
    assert not error.connection_invalidated, "the connection itself is fine: only the SQLSTATE tells"
    assert is_unavailable(error)
    assert not is_conflict(error)
    assert f"({sqlstate})" in describe(error)


@pytest.mark.postgres
@pytest.mark.parametrize("sqlstate", ["3D000", "28000", "28P01", "42P01", "22P02", "XX000"])
async def test_permanent_server_errors_are_not_unavailable(postgres: Database, sqlstate: str) -> None:
    error = await server_error(postgres, sqlstate)
    assert not is_unavailable(error)


@pytest.mark.postgres
@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "23505"])
async def test_serialization_failures_deadlocks_and_unique_violations_are_conflicts(
    postgres: Database, sqlstate: str
) -> None:
    error = await server_error(postgres, sqlstate)
    assert is_conflict(error)
    assert not is_unavailable(error)


@pytest.mark.postgres
async def test_a_connection_killed_by_the_server_is_unavailable(postgres: Database) -> None:
    async with postgres.engine.connect() as victim, postgres.engine.connect() as admin:
        pid = await victim.scalar(text("SELECT pg_backend_pid()"))
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as raised:
            await victim.execute(text("SELECT 1"))
        await victim.invalidate()
    assert is_unavailable(raised.value)


async def test_connecting_to_a_port_nobody_listens_on_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = Database(f"postgresql://postgres@127.0.0.1:{port}/test")
    try:
        with pytest.raises(OSError) as raised:
            async with database.engine.connect():
                pass
    finally:
        await database.dispose()
    assert is_unavailable(raised.value)
    assert describe(raised.value).startswith(type(raised.value).__name__)


@pytest.mark.postgres
async def test_an_unknown_database_and_an_unknown_role_are_permanent(postgres: Database) -> None:
    base = pg_url().rsplit("/", 1)[0]
    for url, expected in (
        (f"{base}/durabot_no_such_database", asyncpg.exceptions.InvalidCatalogNameError),
        (pg_url().replace("postgres@", "durabot_no_such_role@", 1), asyncpg.exceptions.InvalidAuthorizationSpecificationError),
    ):
        database = Database(url)
        try:
            with pytest.raises(expected) as raised:
                async with database.engine.connect():
                    pass
        finally:
            await database.dispose()
        assert not is_unavailable(raised.value), url


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.CannotConnectNowError("the database system is in recovery mode"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.InterfaceError("cannot perform operation: connection is closed"),
        ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
        ConnectionResetError(104, "Connection reset by peer"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed, [Errno 99] Cannot assign requested address"),
        TimeoutError(),
    ],
    ids=lambda error: f"{type(error).__name__}:{error}"[:60],
)
def test_driver_errors_that_arrive_unwrapped_are_unavailable(error: Exception) -> None:
    assert is_unavailable(error)


def test_an_unavailable_error_is_recognised_as_the_cause_of_another() -> None:
    try:
        try:
            raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
        except asyncpg.exceptions.CannotConnectNowError as starting:
            raise RuntimeError("the step could not load its state") from starting
    except RuntimeError as wrapped:
        assert is_unavailable(wrapped)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.InvalidCatalogNameError('database "nope" does not exist'),
        asyncpg.exceptions.InvalidPasswordError('password authentication failed for user "bot"'),
        asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
        ValueError("invalid literal"),
        RuntimeError("bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_permanent_and_programming_errors_are_not_unavailable(error: Exception) -> None:
    assert not is_unavailable(error)


def test_a_locked_sqlite_database_is_unavailable_but_a_missing_folder_is_not(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError) as locked:
            waiter.execute("BEGIN IMMEDIATE")
    finally:
        waiter.close()
        holder.close()
    assert is_unavailable(locked.value)
    with pytest.raises(sqlite3.OperationalError) as missing:
        sqlite3.connect(tmp_path / "no-such-folder" / "db.sqlite3")
    assert not is_unavailable(missing.value)


def test_a_stale_conversation_and_an_integrity_error_are_conflicts() -> None:
    assert is_conflict(StaleConversationError("changed meanwhile"))
    assert is_conflict(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_conflict(asyncpg.exceptions.CannotConnectNowError("starting up"))


@pytest.mark.postgres
async def test_describe_never_repeats_sql_or_parameters(postgres: Database) -> None:
    with pytest.raises(DBAPIError) as raised:
        async with postgres.engine.connect() as connection:
            await connection.execute(text("SELECT CAST('my-email@example.com' AS integer)"))
    described = describe(raised.value)
    assert "my-email" not in described and "SELECT" not in described
    assert "(22P02)" in described
