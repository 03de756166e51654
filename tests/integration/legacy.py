"""An older deployment's database: cases tables without the foreign key, client ids only inside JSON."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from durabot.storage.database import Database

LEGACY_TABLES = {
    "sqlite": [
        """CREATE TABLE cases (
            case_id CHAR(32) PRIMARY KEY, user_id BIGINT NOT NULL, title VARCHAR(200) NOT NULL,
            case_type VARCHAR(16) NOT NULL, status VARCHAR(32) NOT NULL,
            created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, data JSON NOT NULL)""",
        """CREATE TABLE case_intake_progress (
            case_id CHAR(32) PRIMARY KEY, user_id BIGINT NOT NULL, current_block VARCHAR(64),
            current_step VARCHAR(128), completed_blocks JSON NOT NULL, answers JSON NOT NULL,
            created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)""",
    ],
    "postgresql": [
        """CREATE TABLE cases (
            case_id UUID PRIMARY KEY, user_id BIGINT NOT NULL, title VARCHAR(200) NOT NULL,
            case_type VARCHAR(16) NOT NULL, status VARCHAR(32) NOT NULL,
            created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, data JSONB NOT NULL)""",
        """CREATE TABLE case_intake_progress (
            case_id UUID PRIMARY KEY, user_id BIGINT NOT NULL, current_block VARCHAR(64),
            current_step VARCHAR(128), completed_blocks JSONB NOT NULL, answers JSONB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)""",
    ],
}


def stored_id(database: Database, case_id: uuid.UUID) -> str:
    """How the legacy tables store a case id (32 hex digits on SQLite, a UUID on PostgreSQL)."""
    return case_id.hex if database.is_sqlite else str(case_id)


async def make_legacy_database(database: Database, cases: int, orphans: int) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Create the legacy tables with ``cases`` healthy intakes and ``orphans`` progress rows without a case."""
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    moment = now.replace(tzinfo=None) if database.is_sqlite else now
    healthy = [uuid.uuid4() for _ in range(cases)]
    orphaned = [uuid.uuid4() for _ in range(orphans)]
    async with database.engine.begin() as connection:
        for statement in LEGACY_TABLES[database.dialect]:
            await connection.execute(text(statement))
        for number, case_id in enumerate(healthy):
            await connection.execute(
                text(
                    "INSERT INTO cases VALUES (:id, :user, 'Intake Session', 'EB1A', 'draft', :at, :at, :data)"
                ),
                {"id": stored_id(database, case_id), "user": 100 + number, "at": moment,
                 "data": json.dumps({"client_id": 900 + number})},
            )
        for number, case_id in enumerate(healthy + orphaned):
            await connection.execute(
                text(
                    "INSERT INTO case_intake_progress VALUES "
                    "(:id, :user, 'basic', 'email', '[]', :answers, :at, :at)"
                ),
                {"id": stored_id(database, case_id), "user": 100 + number, "at": moment,
                 "answers": json.dumps({"answers": {"full_name": f"Client {number}"}, "order": ["full_name"]})},
            )
    return healthy, orphaned
