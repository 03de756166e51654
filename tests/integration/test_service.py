"""The running service and the CLI: migrate on start, apply the inbox, clean up, stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import func, select

from durabot.bootstrap import build_app
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.sandbox import SandboxClient
from durabot.service import SANDBOX_TOKEN, Service
from durabot.storage.migrate import current_revision
from durabot.storage.tables import ConversationStateRow, OutboxMessageRow


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 30) -> None:
    """Wait until ``check`` holds (a hang guard, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def test_service_without_a_token_talks_to_its_own_sandbox_and_expires_conversations(
    tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'service.sqlite3'}",
        sandbox_port=0,
        inbox_poll_seconds=0.05,
        cleanup_interval_seconds=0.05,
    )
    app = build_app(settings, clock)
    assert await current_revision(app.database) is None
    announced: list[str] = []
    stop = asyncio.Event()
    service = asyncio.create_task(Service(app, announce=announced.append).run(stop))

    async def count(table: type) -> int:
        async with app.database.engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(table)) or 0)

    async def announced_url() -> bool:
        return bool(announced)

    try:
        await eventually(announced_url, "the chat page address")
        url = announced[0].split("Chat with the bot at", 1)[1].strip().rstrip("/")
        assert await current_revision(app.database) == "0008"
        async with SandboxClient(url, SANDBOX_TOKEN) as sandbox:
            await sandbox.send_text(42, "/addmachine")

            async def replied() -> bool:
                return len(await sandbox.bot_messages(42)) == 1

            await eventually(replied, "the bot's first question")
            [question] = await sandbox.bot_messages(42)
            assert question["text"].startswith("Step 1 of 6 · Nickname")
        assert await count(ConversationStateRow) == 1
        clock.advance(hours=25)

        async def cleaned() -> bool:
            return await count(ConversationStateRow) == 0

        await eventually(cleaned, "the expired conversation to be removed")
        assert await count(OutboxMessageRow) == 1
    finally:
        stop.set()
        await asyncio.wait_for(service, 60)
        await app.close()


def durabot(*args: str, database: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, "-m", "durabot", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_migrate_and_cleanup(tmp_path: Path) -> None:
    database = tmp_path / "cli.sqlite3"
    migrated = durabot("migrate", database=database)
    assert migrated.returncode == 0, migrated.stderr
    assert "Database is at revision 0008." in migrated.stdout
    cleaned = durabot("cleanup", database=database)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "Removed 0 expired conversations." in cleaned.stdout


def test_cli_rejects_an_unsupported_database_url(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": "mysql://root@localhost/x"}
    result = subprocess.run(
        [sys.executable, "-m", "durabot", "migrate"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_run_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}", "LOG_FORMAT": "json", "SANDBOX_PORT": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "durabot", "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "service.started" in line:
                break
        else:
            raise AssertionError("the service never reported that it started")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert "service.stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
