"""Liveness and readiness: is the process up, and can it do its work (database, schema, intake of updates)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text

from durabot.observe import BaseObserver
from durabot.storage.availability import describe
from durabot.storage.database import Database
from durabot.storage.migrate import current_revision, head_revision

CHECK_TIMEOUT_SECONDS = 2.0

IntakeState = Literal["starting", "polling", "standby", "webhook", "stopped"]
"""How this worker takes updates in: it polls, waits for the polling lease, serves the webhook, or not yet / no more."""


@dataclass(frozen=True)
class Readiness:
    """The answer to ``/readyz``: ready, and why (each part, for the operator)."""

    ready: bool
    database: str
    migrations: str
    intake: IntakeState
    outage_mode: bool

    def as_json(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "database": self.database,
            "migrations": self.migrations,
            "intake": self.intake,
            "outage_mode": self.outage_mode,
        }


class Health(BaseObserver):
    """What this worker knows of its own state, kept up from the observer seam, and the readiness check.

    Ready means: the database answers, its schema is at durabot's newest migration, and updates
    are being taken in (this worker polls, waits as a standby for the polling lease, or serves the
    webhook).
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self.intake: IntakeState = "starting"
        self.outage_mode = False
        self._head = head_revision()

    def leadership_changed(self, polling: bool) -> None:
        if self.intake != "stopped":
            self.intake = "polling" if polling else "standby"

    def journal_changed(self, engaged: bool, depth: int) -> None:
        self.outage_mode = engaged

    async def readiness(self) -> Readiness:
        """Check the database and its schema now."""
        database, migrations = "ok", "at head"
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                async with self._database.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                revision = await current_revision(self._database)
            if revision != self._head:
                migrations = f"at {revision or 'nothing'}, not {self._head}"
        except TimeoutError:
            database, migrations = "no answer within 2 s", "unknown"
        except Exception as error:
            database, migrations = describe(error), "unknown"
        taking_in = self.intake in ("polling", "standby", "webhook")
        ready = database == "ok" and migrations == "at head" and taking_in
        return Readiness(ready, database, migrations, self.intake, self.outage_mode)
