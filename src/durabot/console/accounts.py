"""Operator accounts, their sessions and the audit of what they do: argon2 password hashes, hashed session tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Table, delete, insert, select

from durabot.errors import DurabotError
from durabot.storage.database import Database
from durabot.storage.tables import OperatorAuditRow, OperatorRow, OperatorSessionRow

OPERATORS = cast(Table, OperatorRow.__table__)
SESSIONS = cast(Table, OperatorSessionRow.__table__)
AUDIT = cast(Table, OperatorAuditRow.__table__)

SESSION_LIFETIME = timedelta(hours=12)
NAME_MAX_LENGTH = 64
PASSWORD_MIN_LENGTH = 10

_hasher = PasswordHasher()
_UNKNOWN_HASH = _hasher.hash(secrets.token_urlsafe(16))
"""Checked against when the name is unknown, so a wrong name takes as long as a wrong password."""


class AccountError(DurabotError):
    """An operator account that cannot be created as asked (the message says why)."""


@dataclass(frozen=True)
class Operator:
    """A logged-in operator, with the token their forms must carry."""

    id: int
    name: str
    csrf_token: str


def token_hash(token: str) -> str:
    """What is stored of a session token: its SHA-256, so a read of the table gives no session away."""
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Operators, sessions and the audit, in ``database``."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, name: str, password: str, now: datetime) -> None:
        """Create an operator.

        Raises:
            AccountError: the name is empty, too long or taken, or the password too short.
        """
        name = name.strip()
        if not name or len(name) > NAME_MAX_LENGTH:
            raise AccountError(f"an operator's name has 1 to {NAME_MAX_LENGTH} characters")
        if len(password) < PASSWORD_MIN_LENGTH:
            raise AccountError(f"a password needs at least {PASSWORD_MIN_LENGTH} characters")
        async with self._database.transaction() as connection:
            if await connection.scalar(select(OPERATORS.c.id).where(OPERATORS.c.name == name)) is not None:
                raise AccountError(f"there is already an operator called {name!r}")
            await connection.execute(
                insert(OPERATORS), {"name": name, "password_hash": _hasher.hash(password), "created_at": now}
            )
            await connection.execute(insert(AUDIT), _audit_row(None, "operator_added", name, {}, now))

    async def log_in(self, name: str, password: str, now: datetime) -> str | None:
        """A new session's token if ``password`` is ``name``'s; ``None`` (and an audited failure) if not."""
        async with self._database.engine.connect() as connection:
            found = (await connection.execute(select(OPERATORS).where(OPERATORS.c.name == name))).first()
        stored = found.password_hash if found is not None else _UNKNOWN_HASH
        try:
            valid = _hasher.verify(stored, password) and found is not None
        except (VerificationError, InvalidHashError):
            valid = False
        async with self._database.transaction() as connection:
            if not valid or found is None:
                await connection.execute(insert(AUDIT), _audit_row(None, "login_failed", name[:NAME_MAX_LENGTH], {}, now))
                return None
            token = secrets.token_urlsafe(32)
            session = {
                "token_hash": token_hash(token),
                "operator_id": found.id,
                "csrf_token": secrets.token_urlsafe(32),
                "created_at": now,
                "expires_at": now + SESSION_LIFETIME,
            }
            await connection.execute(insert(SESSIONS), session)
            await connection.execute(delete(SESSIONS).where(SESSIONS.c.expires_at <= now))
            await connection.execute(insert(AUDIT), _audit_row(found.name, "login", None, {}, now))
        return token

    async def session(self, token: str, now: datetime) -> Operator | None:
        """The operator whose unexpired session ``token`` is."""
        query = (
            select(OPERATORS.c.id, OPERATORS.c.name, SESSIONS.c.csrf_token)
            .join(SESSIONS, SESSIONS.c.operator_id == OPERATORS.c.id)
            .where(SESSIONS.c.token_hash == token_hash(token), SESSIONS.c.expires_at > now)
        )
        async with self._database.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return Operator(row.id, row.name, row.csrf_token) if row is not None else None

    async def log_out(self, token: str, operator: Operator, now: datetime) -> None:
        """End the session."""
        async with self._database.transaction() as connection:
            await connection.execute(delete(SESSIONS).where(SESSIONS.c.token_hash == token_hash(token)))
            await connection.execute(insert(AUDIT), _audit_row(operator.name, "logout", None, {}, now))

    async def audit(self, operator: Operator, action: str, target: str | None, detail: dict[str, Any], now: datetime) -> None:
        """Write down what ``operator`` did."""
        async with self._database.transaction() as connection:
            await connection.execute(insert(AUDIT), _audit_row(operator.name, action, target, detail, now))


def _audit_row(name: str | None, action: str, target: str | None, detail: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"operator_name": name, "action": action, "target": target, "detail": detail, "at": now}
