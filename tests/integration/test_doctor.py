"""``durabot doctor`` through the real CLI: green on a healthy database, red on each problem, on both databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import Table, create_engine, insert, text

from durabot.doctor import CHECK_NAMES
from durabot.journal.store import JOURNAL_STEPS, Journal
from durabot.storage.case_repositories import PROGRESS
from durabot.storage.database import Database
from durabot.storage.inbox import UPDATES
from durabot.storage.leader import LeaderLease
from durabot.storage.migrate import upgrade
from durabot.storage.repositories import OUTBOX
from tests.conftest import free_port, pg_url, require_postgres

SETTINGS_PREFIXES = ("DATABASE_URL", "TELEGRAM_", "WEBHOOK_", "LOG_", "SANDBOX_", "JOURNAL_", "DURABOT_FAILPOINTS")
TOKEN = "123456:" + "S3cretPart" * 4
PRIVATE_TEXT = "my passport number is X1234567"
"""What a user wrote: it must never show in the doctor's output."""


@dataclass
class Target:
    """The database a doctor run looks at: its ``DATABASE_URL`` and how to open it from the test."""

    kind: str
    url: str
    tmp_path: Path

    def open(self) -> Database:
        return Database(self.url)

    def doctor(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        """``durabot doctor`` on this database, with only ``settings`` configured besides it; no journal by default."""
        env = {key: value for key, value in os.environ.items() if not key.startswith(SETTINGS_PREFIXES)}
        env.update({"DATABASE_URL": self.url, "JOURNAL_PATH": "", "LOG_FORMAT": "json", "COLUMNS": "200", **settings})
        return subprocess.run(
            [sys.executable, "-m", "durabot", "doctor", *args],
            env=env, cwd=self.tmp_path, capture_output=True, text=True, timeout=120,
        )


async def _admin(statement: str) -> None:
    admin = Database(pg_url(), isolation_level="AUTOCOMMIT")
    try:
        async with admin.engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await admin.dispose()


@contextlib.asynccontextmanager
async def own_postgres_database(tmp_path: Path) -> AsyncIterator[Target]:
    """A new, empty PostgreSQL database, dropped afterwards: the CLI takes a URL, so no scratch schema will do."""
    require_postgres()
    name = f"durabot_doctor_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield Target("postgresql", f"{pg_url().rsplit('/', 1)[0]}/{name}", tmp_path)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_target(db_kind: str, tmp_path: Path) -> AsyncIterator[Target]:
    """A new, empty database of each kind (the SQLite file exists, with nothing in it)."""
    if db_kind == "sqlite":
        path = tmp_path / "durabot.sqlite3"
        sqlite3.connect(path).close()
        yield Target("sqlite", f"sqlite:///{path}", tmp_path)
        return
    async with own_postgres_database(tmp_path) as created:
        yield created


@pytest.fixture
async def target(empty_target: Target) -> Target:
    """A migrated, empty database of each kind."""
    database = empty_target.open()
    try:
        await upgrade(database)
    finally:
        await database.dispose()
    return empty_target


@pytest.fixture
async def sqlite_target(tmp_path: Path) -> Target:
    """A migrated SQLite database, for what does not depend on the database."""
    found = Target("sqlite", f"sqlite:///{tmp_path / 'durabot.sqlite3'}", tmp_path)
    database = found.open()
    await upgrade(database)
    await database.dispose()
    return found


async def add_rows(target: Target, table: Table, *rows: dict[str, Any], foreign_keys: bool = True) -> None:
    """Insert ``rows`` into ``table``; with ``foreign_keys=False`` as a legacy database would have let them in."""
    if target.kind == "sqlite":  # a plain connection: foreign keys are off unless asked for
        engine = create_engine(target.url)
        try:
            with engine.begin() as connection:
                if foreign_keys:
                    connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.execute(insert(table), list(rows))
        finally:
            engine.dispose()
        return
    database = target.open()
    try:
        async with database.engine.begin() as connection:
            if not foreign_keys:
                await connection.execute(text("SET LOCAL session_replication_role = replica"))
            await connection.execute(insert(table), list(rows))
    finally:
        await database.dispose()


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def update_row(
    update_id: int, received: datetime, processed: datetime | None = None, outcome: str | None = None
) -> dict[str, Any]:
    raw = {"update_id": update_id, "message": {"message_id": 1, "chat": {"id": 7}, "text": PRIVATE_TEXT}}
    return {
        "bot_id": 123456, "update_id": update_id, "fingerprint": f"f{update_id}", "chat_id": 7, "user_id": 7,
        "raw": raw, "event": None, "received_at": received, "processed_at": processed, "outcome": outcome,
        "error": None if outcome is None else f"ValueError: {PRIVATE_TEXT}",
    }


def outbox_row(status: str, created: datetime) -> dict[str, Any]:
    return {
        "chat_id": 7, "method": "send_message", "payload": {"chat_id": 7, "text": PRIVATE_TEXT}, "status": status,
        "attempts": 1, "next_attempt_at": created, "source_update_id": 1, "created_at": created, "sent_at": None,
        "last_error": "Forbidden: bot was blocked by the user" if status == "dead" else None,
    }


def orphan_row() -> dict[str, Any]:
    return {
        "case_id": uuid.uuid4(), "user_id": 7, "current_block": "basic", "current_step": "email",
        "completed_blocks": [], "answers": {"answers": {"full_name": PRIVATE_TEXT}, "order": ["full_name"]},
        "created_at": ago(days=3), "updated_at": ago(days=3),
    }


def table(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """The doctor's table as ``{check: (status, detail)}``; checks that nothing private or secret was printed."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert PRIVATE_TEXT not in output and "S3cretPart" not in output, output
    rows = {}
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 3 and cells[0] != "check":
            rows[cells[0]] = (cells[1], cells[2])
    assert list(rows) == list(CHECK_NAMES), result.stdout
    return rows


def statuses(rows: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {name: status for name, (status, _detail) in rows.items()}


def healthy_statuses(kind: str, **changed: str) -> dict[str, str]:
    """What a healthy database shows (on PostgreSQL nobody holds the poller lease), with ``changed`` ones."""
    expected = dict.fromkeys(CHECK_NAMES, "ok")
    if kind == "postgresql":
        expected["poller lease"] = "warn"
    return {**expected, **changed}


def test_a_freshly_migrated_database_is_green(target: Target) -> None:
    result = target.doctor()
    rows = table(result)
    assert result.returncode == 0, result.stdout
    assert statuses(rows) == healthy_statuses(target.kind)
    assert rows["migrations"][1] == "at head 0008"
    expected_lease = "not applicable on SQLite" if target.kind == "sqlite" else "nobody polls"
    assert rows["poller lease"][1].startswith(expected_lease)


def test_an_orphan_is_red(target: Target) -> None:
    asyncio.run(add_rows(target, PROGRESS, orphan_row(), foreign_keys=False))
    result = target.doctor()
    rows = table(result)
    assert result.returncode == 1, result.stdout
    assert statuses(rows) == healthy_statuses(target.kind, orphans="problem")
    assert rows["orphans"][1].startswith("1 intake progress row without a case")


@pytest.mark.parametrize(("received_ago", "expected"), [(timedelta(hours=1), "problem"), (timedelta(seconds=20), "ok")])
def test_an_update_unapplied_for_more_than_five_minutes_is_stuck(
    target: Target, received_ago: timedelta, expected: str
) -> None:
    unapplied = update_row(1, datetime.now(UTC) - received_ago)
    asyncio.run(add_rows(target, UPDATES, unapplied, update_row(2, ago(days=1), ago(days=1), "applied")))
    result = target.doctor()
    rows = table(result)
    assert result.returncode == (1 if expected == "problem" else 0), result.stdout
    assert statuses(rows) == healthy_statuses(target.kind, inbox=expected)
    if expected == "problem":
        assert rows["inbox"][1].startswith("1 update unapplied for more than 5m, oldest 1h 00m")
    else:
        assert re.fullmatch(r"1 update waiting, oldest 2\ds", rows["inbox"][1]), rows["inbox"]


def test_updates_that_failed_in_the_last_day_are_a_warning(target: Target) -> None:
    asyncio.run(add_rows(
        target, UPDATES,
        update_row(1, ago(hours=2), ago(hours=2), "failed"),
        update_row(2, ago(hours=23), ago(hours=23), "failed"),
        update_row(3, ago(hours=30), ago(hours=30), "failed"),  # before the window
        update_row(4, ago(hours=1), ago(hours=1), "applied"),
    ))
    result = target.doctor()
    rows = table(result)
    assert result.returncode == 0, result.stdout
    assert statuses(rows) == healthy_statuses(target.kind, **{"failed updates": "warn"})
    assert rows["failed updates"][1].startswith("2 updates failed in the last 24 h")


def test_a_dead_letter_is_red(target: Target) -> None:
    asyncio.run(add_rows(target, OUTBOX, outbox_row("dead", ago(hours=3)), outbox_row("sent", ago(hours=3))))
    result = target.doctor()
    rows = table(result)
    assert result.returncode == 1, result.stdout
    assert statuses(rows) == healthy_statuses(target.kind, **{"dead letters": "problem"})
    assert rows["dead letters"][1].startswith("1 reply given up on, newest queued 3h 00m ago")
    assert "blocked" not in result.stdout


def test_only_an_old_dead_letter_is_a_warning_not_a_problem(target: Target) -> None:
    asyncio.run(add_rows(target, OUTBOX, outbox_row("dead", ago(hours=30))))  # a user who blocked the bot long ago
    result = target.doctor()
    rows = table(result)
    assert result.returncode == 0, result.stdout
    assert statuses(rows) == healthy_statuses(target.kind, **{"dead letters": "warn"})


@pytest.mark.parametrize(("queued_ago", "expected"), [(timedelta(minutes=10), "problem"), (timedelta(seconds=5), "ok")])
def test_replies_unsent_for_more_than_five_minutes_are_red(
    target: Target, queued_ago: timedelta, expected: str
) -> None:
    queued = datetime.now(UTC) - queued_ago
    asyncio.run(add_rows(target, OUTBOX, outbox_row("pending", queued), outbox_row("sending", datetime.now(UTC))))
    result = target.doctor()
    rows = table(result)
    assert result.returncode == (1 if expected == "problem" else 0), result.stdout
    assert statuses(rows) == healthy_statuses(target.kind, outbox=expected)
    assert rows["outbox"][1].startswith("2 replies unsent, oldest " + ("10m" if expected == "problem" else ""))


def test_an_unmigrated_database_is_red_on_the_migrations(empty_target: Target) -> None:
    result = empty_target.doctor()
    rows = table(result)
    assert result.returncode == 1, result.stdout
    assert rows["database"][0] == "ok"
    assert rows["migrations"] == ("problem", "not migrated (head is 0008; run durabot migrate)")
    assert rows["orphans"] == ("warn", "not checked: no cases or case_intake_progress table (run durabot migrate)")
    assert rows["inbox"][0] == rows["outbox"][0] == rows["dead letters"][0] == "warn"


def test_a_database_behind_the_head_is_red_on_the_migrations(empty_target: Target) -> None:
    async def migrate_to_0005() -> None:
        database = empty_target.open()
        try:
            await upgrade(database, "0005")
        finally:
            await database.dispose()

    asyncio.run(migrate_to_0005())
    result = empty_target.doctor()
    rows = table(result)
    assert result.returncode == 1, result.stdout
    assert rows["migrations"] == ("problem", "at 0005, head is 0008 (run durabot migrate)")
    assert rows["orphans"][0] == "ok"


def test_json_names_every_check(target: Target) -> None:
    asyncio.run(add_rows(target, OUTBOX, outbox_row("dead", ago(minutes=1))))
    result = target.doctor("--json")
    assert result.returncode == 1, result.stdout
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    assert [finding["name"] for finding in report["findings"]] == list(CHECK_NAMES)
    assert {finding["name"]: finding["status"] for finding in report["findings"]} == healthy_statuses(
        target.kind, **{"dead letters": "problem"}
    )
    assert all(set(finding) == {"name", "status", "detail"} and finding["detail"] for finding in report["findings"])


def test_json_on_a_healthy_database_exits_zero(sqlite_target: Target) -> None:
    result = sqlite_target.doctor("--json")
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["healthy"] is True


def test_a_missing_sqlite_file_is_red_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    result = Target("sqlite", f"sqlite:///{missing}", tmp_path).doctor()
    rows = table(result)
    assert result.returncode == 1, result.stdout
    assert rows["database"] == ("problem", f"SQLite file {missing} does not exist")
    assert rows["migrations"] == ("warn", "not checked: the database cannot be reached")
    assert not missing.exists()


def test_an_unreachable_postgresql_is_one_red_line(tmp_path: Path) -> None:
    port = free_port()
    result = Target("postgresql", f"postgresql://durabot:pa55word@127.0.0.1:{port}/durabot", tmp_path).doctor()
    rows = table(result)
    assert result.returncode == 1, result.stdout
    status, detail = rows["database"]
    assert status == "problem" and detail.startswith(f"PostgreSQL 127.0.0.1:{port}/durabot: ")
    assert "pa55word" not in result.stdout + result.stderr
    assert all(rows[name][0] == "warn" for name in ("migrations", "orphans", "poller lease"))


@pytest.mark.postgres
async def test_the_poller_lease_names_the_session_holding_it(tmp_path: Path) -> None:
    async with own_postgres_database(tmp_path) as found:
        holder, observer = found.open(), found.open()
        lease = LeaderLease(holder)
        try:
            await upgrade(observer)
            assert await lease.try_acquire()
            others = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            async with observer.engine.connect() as connection:
                pids = list((await connection.execute(text(others))).scalars())
            assert len(pids) == 1  # the lease's own connection
            result = await asyncio.to_thread(found.doctor)
        finally:
            await lease.release()
            await holder.dispose()
            await observer.dispose()
    rows = table(result)
    assert result.returncode == 0, result.stdout
    assert rows["poller lease"] == ("ok", f"held by pid {pids[0]}")


class FakeTelegram:
    """``getMe`` and ``getWebhookInfo`` on a local port; ``reject`` answers 401 as for a revoked token."""

    def __init__(self, reject: bool = False, webhook: dict[str, Any] | None = None) -> None:
        self.reject = reject
        self.webhook = webhook or {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        self.url = ""

    async def _get_me(self, request: web.Request) -> web.Response:
        if self.reject:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        me = {"id": 123456, "is_bot": True, "first_name": "Doc", "username": "doc_bot"}
        return web.json_response({"ok": True, "result": me})

    async def _get_webhook_info(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "result": self.webhook})

    async def serve(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/bot{token}/getMe", self._get_me)
        app.router.add_post("/bot{token}/getWebhookInfo", self._get_webhook_info)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return runner


async def doctor_against(fake: FakeTelegram, target: Target, **settings: str) -> subprocess.CompletedProcess[str]:
    runner = await fake.serve()
    try:
        return await asyncio.to_thread(
            target.doctor, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=fake.url, **settings
        )
    finally:
        await runner.cleanup()


async def test_a_polling_bot_without_a_webhook_is_green(sqlite_target: Target) -> None:
    webhook = {"url": "", "has_custom_certificate": False, "pending_update_count": 4}
    result = await doctor_against(FakeTelegram(webhook=webhook), sqlite_target)
    rows = table(result)
    assert result.returncode == 0, result.stdout
    assert rows["webhook"] == ("ok", "no webhook (long polling); 4 updates pending at Telegram")


async def test_a_webhook_error_reported_by_telegram_is_a_warning(sqlite_target: Target) -> None:
    webhook = {
        "url": "https://bot.example.com/hook", "has_custom_certificate": False, "pending_update_count": 1,
        "last_error_date": int(ago(minutes=30).timestamp()),
        "last_error_message": "Wrong response from the webhook: 503 Service Unavailable",
    }
    result = await doctor_against(
        FakeTelegram(webhook=webhook), sqlite_target,
        WEBHOOK_URL="https://bot.example.com/hook", WEBHOOK_SECRET="s3cret",
    )
    rows = table(result)
    assert result.returncode == 0, result.stdout
    assert rows["webhook"] == (
        "warn",
        "webhook set to WEBHOOK_URL; 1 update pending at Telegram; "
        "last error 30m ago: Wrong response from the webhook: 503 Service Unavailable",
    )


async def test_a_rejected_token_is_red(sqlite_target: Target) -> None:
    result = await doctor_against(FakeTelegram(reject=True), sqlite_target)
    rows = table(result)
    assert result.returncode == 1, result.stdout
    assert rows["webhook"] == ("problem", "the Bot API rejected the token of bot 123456")


def test_an_unreachable_bot_api_is_a_warning(sqlite_target: Target) -> None:
    result = sqlite_target.doctor(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    rows = table(result)
    assert result.returncode == 0, result.stdout
    status, detail = rows["webhook"]
    assert status == "warn" and detail.startswith("the Bot API cannot be reached"), detail


@pytest.mark.postgres
async def test_the_outage_journal_depth_is_read_while_a_worker_holds_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    async with own_postgres_database(tmp_path) as found:
        database = found.open()
        try:
            await upgrade(database)
        finally:
            await database.dispose()
        absent = table(await asyncio.to_thread(found.doctor, JOURNAL_PATH=str(path)))
        assert absent["outage journal"] == ("ok", f"no journal file at {path} yet")
        assert not path.exists()

        journal = Journal(path)
        try:
            await journal.open(found.url)  # and keeps it, as a running worker does
            steps = [{"chat_id": 7, "update_id": n, "writes": "{}", "applied_at": ago(minutes=1)} for n in (1, 2)]
            async with journal.database.transaction() as connection:
                await connection.execute(insert(JOURNAL_STEPS), steps)
                await connection.execute(insert(OUTBOX), [outbox_row("pending", datetime.now(UTC))])
            result = await asyncio.to_thread(found.doctor, JOURNAL_PATH=str(path))
        finally:
            await journal.close()
    rows = table(result)
    assert result.returncode == 0, result.stdout
    assert rows["outage journal"] == (
        "warn", f"{path}: 2 steps and 0 updates to replay into the primary, 1 reply unsent (keep this file)"
    )
