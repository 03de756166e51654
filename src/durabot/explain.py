"""The one line an operator reads when a command or the service cannot go on: what failed, in their terms, no secret in it."""

from __future__ import annotations

import sqlite3

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from telegram.error import TelegramError

from durabot.config import masked_database_url
from durabot.errors import DurabotError, OperatorError
from durabot.redaction import redact
from durabot.storage import availability

DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, sqlite3.Error, OSError)
DATABASE_ERRORS = (DBAPIError, PoolTimeoutError, *DRIVER_ERRORS)


def explain(error: BaseException, database_url: str) -> str | None:
    """The one-line, redacted reason ``error`` stopped durabot, or ``None`` for an error only a developer can fix (a bug).

    An error raised *from* a database or Bot API error (a background task that died of one,
    say) is explained by its cause.

    Args:
        error: What was raised.
        database_url: The configured DATABASE_URL, shown with its password masked.
    """
    link: BaseException | None = error
    while link is not None:
        reason = _reason(link, database_url)
        if reason is not None:
            return " ".join(redact(reason).split())
        link = link.__cause__
    if isinstance(error, DurabotError):  # raised on purpose, so its message is meant to be read
        return " ".join(redact(str(error)).split())
    return None


def _reason(error: BaseException, database_url: str) -> str | None:
    if isinstance(error, OperatorError):
        return str(error)
    if isinstance(error, DATABASE_ERRORS):
        return _database_reason(error, masked_database_url(database_url))
    if isinstance(error, TelegramError):
        return f"the Bot API refused: {error.message}"
    return None


def _database_reason(error: BaseException, where: str) -> str:
    driver = _driver_error(error)
    lines = str(driver).strip().splitlines()
    said = lines[0] if lines else ""
    code = availability.sqlstate(driver) or availability.sqlstate(error)
    label = f"{type(driver).__name__}, SQLSTATE {code}" if code else type(driver).__name__
    verb = "cannot reach" if availability.is_unavailable(error) else "cannot use"
    return f"{verb} the database {where}: {said} ({label})" if said else f"{verb} the database {where} ({label})"


def _driver_error(error: BaseException) -> BaseException:
    """The driver's own exception behind SQLAlchemy's wrappers (whose text repeats the SQL)."""
    wrapped = getattr(error, "orig", None)
    if not isinstance(wrapped, BaseException):
        return error
    cause = wrapped.__cause__
    return cause if isinstance(cause, DRIVER_ERRORS) else wrapped
