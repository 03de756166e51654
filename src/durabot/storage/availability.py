"""Which database errors mean "not reachable now, try again later" and which mean "clashed with concurrent work".

Every part that talks to the database — the engine, the relay, the poller, the leader lease
and start-up — asks these two functions, so a database restart is handled the same way
everywhere: *unavailable* work waits and is retried; it is never recorded as failed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from durabot.engine.ports import StaleConversationError

CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
"""Serialization failure, deadlock detected."""

UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53"})
"""Connection exceptions (08xxx) and insufficient resources, e.g. too many connections (53xxx)."""

UNAVAILABLE_SQLSTATES = frozenset(
    {
        "57P01",  # admin shutdown: the server is stopping
        "57P02",  # crash shutdown: another backend crashed, the server is restarting
        "57P03",  # cannot connect now: the database system is starting up / in recovery mode
        "57P05",  # idle session timeout: the server closed our session
        "58000",  # system error
        "58030",  # I/O error
        "25006",  # read-only transaction: connected to a standby during a failover
    }
)

SQLITE_UNAVAILABLE_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})
"""SQLite primary result codes that may clear up: locked by another writer, disk full, I/O error."""

_MAX_CHAIN = 16
_DRIVER_ERRORS = (asyncpg.exceptions.PostgresError, asyncpg.exceptions.InterfaceError, sqlite3.Error, OSError)


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached or cannot take work right now.

    True for refused or reset connections, a connection lost mid-statement, a server that is
    shutting down, starting up or recovering, too many connections, and a locked SQLite file —
    whether the driver's exception arrives bare or wrapped by SQLAlchemy, and also when it is
    the cause of another error. False for permanent errors such as an unknown database or role
    or a wrong password, which no waiting can fix.
    """
    return any(_says_unavailable(link) for link in _causes(error))


def is_conflict(error: BaseException) -> bool:
    """Whether ``error`` is a clash with concurrent work (unique violation, deadlock, stale version)."""
    if isinstance(error, IntegrityError | StaleConversationError):
        return True
    return sqlstate(error) in CONFLICT_SQLSTATES


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE code PostgreSQL gave for ``error`` (bare asyncpg or wrapped by SQLAlchemy), if any."""
    for candidate in (error, getattr(error, "orig", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, the driver error SQLAlchemy wrapped, and what caused or preceded each, without cycles."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_CHAIN:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        wrapped = getattr(link, "orig", None)
        pending.extend(e for e in (wrapped, link.__cause__, link.__context__) if isinstance(e, BaseException))


def _says_unavailable(error: BaseException) -> bool:
    if isinstance(error, OSError | PoolTimeoutError | asyncpg.exceptions.PostgresConnectionError):
        return True  # refused, reset, timed out, unresolvable host; no pool slot; connection lost
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, asyncpg.exceptions.InterfaceError) and "connection is closed" in str(error):
        return True
    if isinstance(error, sqlite3.Error):
        return (getattr(error, "sqlite_errorcode", 0) & 0xFF) in SQLITE_UNAVAILABLE_CODES
    code = sqlstate(error)
    return code is not None and (code in UNAVAILABLE_SQLSTATES or code[:2] in UNAVAILABLE_SQLSTATE_CLASSES)


def describe(error: BaseException) -> str:
    """A log-safe description of a database error, e.g. ``CannotConnectNowError (57P03): the database system is starting up``.

    Names the driver's own error and its SQLSTATE; the driver's message is added only for errors
    about the connection itself, so no SQL text, parameter or row content is ever included.
    """
    links = list(_causes(error))
    driver = next((link for link in links if isinstance(link, _DRIVER_ERRORS)), error)
    code = sqlstate(driver) or sqlstate(error)
    label = f"{type(driver).__name__} ({code})" if code else type(driver).__name__
    message = str(driver).strip().splitlines()[0] if str(driver).strip() else ""
    if message and _says_unavailable(driver) and not isinstance(driver, DBAPIError):
        return f"{label}: {message}"
    return label

