"""Two ``durabot run`` workers on one PostgreSQL database: every reply once, each chat in order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from durabot.storage.database import Database
from tests.conftest import pg_url, require_postgres
from tests.e2e.conftest import Bot, SandboxClient

CHATS = range(6001, 6013)
ANSWERS = ["/addmachine", "Lathe", "/skip", "L-9", "/skip", "/skip", "done"]


async def _admin(statement: str) -> None:
    database = Database(pg_url(), isolation_level="AUTOCOMMIT")
    try:
        async with database.engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await database.dispose()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    require_postgres()
    name = f"durabot_e2e_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = pg_url().rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
def test_two_workers_send_every_reply_once_and_in_order(
    sandbox: SandboxClient, postgres_database: str, tmp_path: Path
) -> None:
    workers = Bot(sandbox, postgres_database, tmp_path)
    try:
        first = workers.start()
        second = workers.start(wait="service.started")
        for step, answer in enumerate(ANSWERS, start=1):
            for chat in CHATS:
                sandbox.say(chat, answer)
            for chat in CHATS:
                sandbox.wait_for_reply(chat, step)
        for chat in CHATS:
            texts = sandbox.bot_texts(chat)
            assert len(texts) == len(ANSWERS), f"chat {chat} got {len(texts)} replies: {texts}"
            assert [t.split(" · ")[0] for t in texts[:6]] == [f"Step {n} of 6" for n in range(1, 7)]
            assert texts[-1].startswith("Saved “Lathe”")
        applied = len(first.events("engine.update_applied")) + len(second.events("engine.update_applied"))
        assert applied == len(CHATS) * len(ANSWERS)
    finally:
        workers.stop_all()
