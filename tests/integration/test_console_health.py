"""The console's Health page over HTTP, on both databases: its figures, retry, discard and resend, CSRF and the login."""

from __future__ import annotations

import contextlib
import html
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, insert, null, text, update
from sqlalchemy.engine import make_url

from durabot.bootstrap import build_engine
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.console.accounts import Accounts
from durabot.console.cases import CaseBook
from durabot.console.health import Health
from durabot.console.health_page import MINUTES, HealthSection
from durabot.engine.runner import Applied
from durabot.console.metrics import Metrics
from durabot.console.server import ConsoleServer
from durabot.console.web import ConsolePages
from durabot.engine.events import Event
from durabot.engine.runner import Engine
from durabot.journal.store import JOURNAL_STEPS, Journal
from durabot.outbox import encode
from durabot.replies import Reply
from durabot.storage.case_repositories import PROGRESS
from durabot.storage.database import Database
from durabot.storage.inbox import UPDATES
from durabot.storage.leader import POLLER_LOCK_KEY
from durabot.storage.outbox_queue import SqlAlchemyOutboxQueue
from durabot.storage.repositories import OUTBOX
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from tests.conftest import migrated_database, pg_url

PASSWORD = "correct horse battery"
PRIVATE_TEXT = "Maria's secret answer 42"
CHAT = 7701
OTHER_CHAT = 7702


@dataclass
class Console:
    """A running console with the Health section, its database and an engine on the same database."""

    database: Database
    url: str
    clock: FakeClock
    engine: Engine

    @contextlib.asynccontextmanager
    async def operator(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client logged in as alice through the real login form."""
        async with httpx.AsyncClient(base_url=self.url, follow_redirects=False) as client:
            page = await client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None and "durabot_login" in client.cookies
            form = {"csrf": csrf.group(1), "name": "alice", "password": PASSWORD, "next": "/health"}
            logged_in = await client.post("/login", data=form)
            assert logged_in.status_code == 302 and logged_in.headers["location"] == "/health"
            yield client

    async def rows(self, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
        async with self.database.engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql), parameters)]

    async def insert(self, table: Any, *rows: dict[str, Any]) -> list[int]:
        async with self.database.transaction() as connection:
            return [int((await connection.execute(insert(table).returning(table.c.id), row)).scalar_one()) for row in rows]

    async def failed_update(self, update_id: int, chat_id: int = CHAT) -> int:
        """A well-formed message stored through the engine, then marked failed as the engine marks a step that raised."""
        await self.engine.receive([Event.message(update_id, chat_id, chat_id, PRIVATE_TEXT)])
        [(row_id,)] = await self.rows("SELECT id FROM telegram_updates WHERE update_id = :u", u=update_id)
        async with self.database.transaction() as connection:
            await connection.execute(
                update(UPDATES).where(UPDATES.c.id == row_id)
                .values(processed_at=self.clock(), outcome="failed", error="RuntimeError('the step broke')")
            )
        return int(row_id)

    async def dead_letter(self, chat_id: int = CHAT, queued_ago: timedelta = timedelta(hours=1)) -> int:
        return (await self.insert(OUTBOX, outbox_row(chat_id, "dead", self.clock() - queued_ago)))[0]


def outbox_row(chat_id: int, status: str, created: datetime, sent: datetime | None = None) -> dict[str, Any]:
    method, payload = encode(Reply(PRIVATE_TEXT))
    return {
        "chat_id": chat_id, "method": method.value, "payload": payload, "status": status, "attempts": 5,
        "next_attempt_at": created, "source_update_id": 1, "created_at": created, "sent_at": sent,
        "last_error": "Forbidden: bot was blocked by the user" if status == "dead" else None,
    }


def update_row(update_id: int, received: datetime, processed: datetime | None, outcome: str | None) -> dict[str, Any]:
    return {
        "bot_id": 0, "update_id": update_id, "fingerprint": f"f{update_id}", "chat_id": OTHER_CHAT, "user_id": OTHER_CHAT,
        "raw": {"redacted": True}, "event": None, "received_at": received, "processed_at": processed, "outcome": outcome,
        "error": None,
    }


@contextlib.asynccontextmanager
async def running_console(database: Database, clock: FakeClock, section: HealthSection) -> AsyncIterator[Console]:
    """The real console server on a free port, with ``section`` as its only section and alice as its operator."""
    accounts = Accounts(database)
    await accounts.add("alice", PASSWORD, clock())
    pages = ConsolePages(accounts, CaseBook(database), clock, sections=(section,))
    server = ConsoleServer(Health(database), Metrics(), "127.0.0.1", 0, pages=pages)
    await server.start()
    engine = build_engine(SqlAlchemyUnitOfWorkFactory(database, clock), Settings(JOURNAL_PATH=""), clock)
    try:
        yield Console(database, f"http://127.0.0.1:{server.ports['console']}", clock, engine)
    finally:
        await server.stop()


@pytest.fixture
async def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def console(db_kind: str, tmp_path: Path, clock: FakeClock, metrics: Metrics) -> AsyncIterator[Console]:
    async with migrated_database(db_kind, tmp_path) as database:
        async with running_console(database, clock, HealthSection(database, Settings(JOURNAL_PATH=""), metrics)) as running:
            yield running


def card(page: str, name: str) -> str:
    """The text of the card ``id=name`` on the page, tags dropped and spaces squeezed."""
    found = re.search(rf'<div class="card" id="{name}"[^>]*>(.*?)</div>', page, re.DOTALL)
    assert found is not None, f"no {name} card"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def session_csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def audited(console: Console, action: str) -> list[tuple[Any, ...]]:
    return await console.rows("SELECT operator_name, target, detail FROM operator_audit WHERE action = :a", a=action)


async def make_orphan(database: Database, now: datetime) -> None:
    """An intake progress row without its case, as a legacy database allowed (foreign keys bypassed)."""
    row = {"case_id": uuid.uuid4(), "user_id": CHAT, "current_block": "basic", "current_step": "email",
           "completed_blocks": [], "answers": {}, "created_at": now, "updated_at": now}
    if database.is_sqlite:  # a plain pysqlite engine: SQLite enforces foreign keys only when asked to
        plain = create_engine(f"sqlite:///{make_url(database.url).database}")
        try:
            with plain.begin() as connection:
                connection.execute(insert(PROGRESS), row)
        finally:
            plain.dispose()
        return
    async with database.transaction() as connection:
        await connection.execute(text("SET LOCAL session_replication_role = replica"))  # no foreign-key triggers
        await connection.execute(insert(PROGRESS), row)


async def test_without_a_login_the_page_redirects_and_the_actions_are_refused(console: Console) -> None:
    row_id = await console.failed_update(10)
    dead_id = await console.dead_letter()
    async with httpx.AsyncClient(base_url=console.url, follow_redirects=False) as anonymous:
        page = await anonymous.get("/health")
        assert page.status_code == 302 and page.headers["location"] == "/login?next=/health"
        for path in (f"/health/updates/{row_id}/retry", f"/health/updates/{row_id}/discard", f"/health/dead/{dead_id}/resend"):
            assert (await anonymous.post(path, data={"csrf": "x"})).status_code == 403, path
    assert await console.rows("SELECT outcome FROM telegram_updates WHERE id = :i", i=row_id) == [("failed",)]
    assert await console.rows("SELECT status FROM outbox_messages WHERE id = :i", i=dead_id) == [("dead",)]


async def test_the_page_shows_the_backlogs_failures_dead_letters_and_orphans(console: Console, metrics: Metrics) -> None:
    now = console.clock()
    async with console.operator() as client:
        calm = await client.get("/health")
        assert calm.status_code == 200
        assert card(calm.text, "orphans").endswith("0") and "without a case" not in calm.text
        assert "No update failed in the last 7 days." in calm.text and "No dead letter." in calm.text
        assert card(calm.text, "latency") == "Step latency no step measured in this process in the last hour"

        failed_id = await console.failed_update(10)
        dead_id = await console.dead_letter()
        await console.engine.receive([Event.message(11, OTHER_CHAT, OTHER_CHAT, PRIVATE_TEXT)])  # pending, just now
        await console.insert(UPDATES, update_row(12, now - timedelta(minutes=4), None, None))  # pending for 4 minutes
        await console.insert(OUTBOX, outbox_row(CHAT, "pending", now - timedelta(minutes=3)),
                             outbox_row(CHAT, "sending", now - timedelta(minutes=1)))
        await make_orphan(console.database, now)
        for seconds in (0.004, 0.004, 0.004, 0.3):
            metrics.update_applied(Applied(1, "applied", (), seconds=seconds, flow="none"))

        page = (await client.get("/health")).text
    assert card(page, "database").startswith("Database reachable")
    orphans = card(page, "orphans")
    assert "1 intake progress row without a case" in orphans and 'id="orphans" style="border-color: var(--bad)"' in page
    assert card(page, "inbox") == "Inbox pending 2 · oldest 4m 1 failed in the last 7 days"
    assert card(page, "outbox") == "Outbox pending 2 · oldest 3m 1 dead letter"
    assert card(page, "latency").startswith("Step latency p50 4.0 ms, p95 300.0 ms (over 4 steps in the last hour")
    failed_row = re.search(rf'<tr id="update-{failed_id}">(.*?)</tr>', page, re.DOTALL)
    assert failed_row is not None
    assert "<td>10</td>" in failed_row.group(1) and f"<td>{CHAT}</td>" in failed_row.group(1)
    assert "RuntimeError(&#39;the step broke&#39;)" in failed_row.group(1)
    assert f'action="/health/updates/{failed_id}/retry"' in failed_row.group(1)
    assert f'action="/health/updates/{failed_id}/discard"' in failed_row.group(1)
    dead_row = re.search(rf'<tr id="dead-{dead_id}">(.*?)</tr>', page, re.DOTALL)
    assert dead_row is not None and "Forbidden: bot was blocked by the user" in dead_row.group(1)
    assert "send_message" in dead_row.group(1) and f'action="/health/dead/{dead_id}/resend"' in dead_row.group(1)
    assert PRIVATE_TEXT not in page and "Maria" not in page


async def test_a_long_error_is_cut_and_an_update_whose_text_was_dropped_cannot_be_retried(console: Console) -> None:
    row_id, json_null_id = await console.failed_update(10), await console.failed_update(11)
    async with console.database.transaction() as connection:  # as the retention drops it (SQL NULL), or a JSON null
        await connection.execute(
            update(UPDATES).where(UPDATES.c.id == row_id).values(event=null(), raw={"redacted": True}, error="E" * 1000)
        )
        await connection.execute(update(UPDATES).where(UPDATES.c.id == json_null_id).values(event=None))
    async with console.operator() as client:
        page = (await client.get("/health")).text
        assert "E" * 299 + "…" in page and "E" * 300 not in page
        assert page.count("cannot retry") == 2 and "/retry" not in page
        for refused in (row_id, json_null_id):
            response = await client.post(f"/health/updates/{refused}/retry", data={"csrf": session_csrf(page)})
            assert response.status_code == 404
    assert await console.rows("SELECT outcome FROM telegram_updates ORDER BY id") == [("failed",), ("failed",)]


async def test_the_last_hour_is_charted_per_minute(console: Console) -> None:
    now = console.clock()
    minute = now.replace(second=0, microsecond=0)
    await console.insert(
        UPDATES,
        *(update_row(100 + n, minute - timedelta(minutes=2), minute - timedelta(minutes=2, seconds=-n), "applied")
          for n in range(3)),
        update_row(110, now, now, "applied"),
        update_row(111, now, now, "ignored"),  # not a step
        update_row(112, now - timedelta(hours=2), now - timedelta(hours=2), "applied"),  # before the hour
    )
    await console.insert(OUTBOX, outbox_row(CHAT, "sent", now, now - timedelta(minutes=1)),
                         outbox_row(CHAT, "sent", now, now - timedelta(minutes=1)),
                         outbox_row(CHAT, "sent", now, now - timedelta(minutes=90)))
    async with console.operator() as client:
        page = (await client.get("/health")).text
    steps, replies = page.split("Replies sent per minute", 1)
    assert "Steps applied per minute" in steps and "4 in all, at most 3 in a minute" in steps
    assert steps.count("<rect ") == MINUTES
    two_ago = f"{minute - timedelta(minutes=2):%H:%M} UTC: 3 steps"
    assert two_ago in steps and f"{minute:%H:%M} UTC: 1 steps" in steps
    assert "2 in all, at most 2 in a minute" in replies and replies.count("<rect ") == MINUTES
    assert f"{minute - timedelta(minutes=1):%H:%M} UTC: 2 replies" in replies


async def test_retry_makes_a_failed_update_pending_and_the_engine_applies_it(console: Console) -> None:
    row_id = await console.failed_update(10)
    async with console.operator() as client:
        page = (await client.get("/health")).text
        retried = await client.post(f"/health/updates/{row_id}/retry", data={"csrf": session_csrf(page)})
        assert retried.status_code == 303 and retried.headers["location"] == "/health"
        assert await console.rows(
            "SELECT processed_at, outcome, error FROM telegram_updates WHERE id = :i", i=row_id
        ) == [(None, None, None)]
        assert card((await client.get("/health")).text, "inbox").startswith("Inbox pending 1 ")
        assert await console.engine.process_pending() == 1
        [(outcome, error)] = await console.rows("SELECT outcome, error FROM telegram_updates WHERE id = :i", i=row_id)
        assert (outcome, error) == ("applied", None)
        again = await client.post(f"/health/updates/{row_id}/retry", data={"csrf": session_csrf(page)})
        assert again.status_code == 404  # no longer failed
    [(operator, target, detail)] = await audited(console, "update_retried")
    assert (operator, target) == ("alice", f"telegram_updates:{row_id}")
    assert _json(detail) == {"update_id": 10, "chat_id": CHAT}


async def test_discard_marks_a_failed_update_ignored(console: Console) -> None:
    row_id = await console.failed_update(10)
    async with console.operator() as client:
        page = (await client.get("/health")).text
        discarded = await client.post(f"/health/updates/{row_id}/discard", data={"csrf": session_csrf(page)})
        assert discarded.status_code == 303 and discarded.headers["location"] == "/health"
        assert "No update failed in the last 7 days." in (await client.get("/health")).text
        assert (await client.post(f"/health/updates/{row_id}/retry", data={"csrf": session_csrf(page)})).status_code == 404
        assert (await client.post(f"/health/updates/{row_id}/discard", data={"csrf": session_csrf(page)})).status_code == 404
    assert await console.rows("SELECT outcome, error FROM telegram_updates WHERE id = :i", i=row_id) == [
        ("ignored", "discarded by alice")
    ]
    assert await console.engine.process_pending() == 0
    [(operator, target, detail)] = await audited(console, "update_discarded")
    assert (operator, target, _json(detail)) == ("alice", f"telegram_updates:{row_id}", {"update_id": 10, "chat_id": CHAT})


async def test_resend_puts_a_dead_letter_back_where_the_relay_claims_it(console: Console) -> None:
    dead_id = await console.dead_letter()
    queue = SqlAlchemyOutboxQueue(console.database, console.clock)
    assert await queue.claim(10, timedelta(seconds=10)) == []
    async with console.operator() as client:
        page = (await client.get("/health")).text
        resent = await client.post(f"/health/dead/{dead_id}/resend", data={"csrf": session_csrf(page)})
        assert resent.status_code == 303 and resent.headers["location"] == "/health"
        [(status, attempts, due, error)] = await console.rows(
            "SELECT status, attempts, next_attempt_at, last_error FROM outbox_messages WHERE id = :i", i=dead_id
        )
        assert (status, attempts, error) == ("pending", 0, None) and due is not None
        assert "No dead letter." in (await client.get("/health")).text
        assert (await client.post(f"/health/dead/{dead_id}/resend", data={"csrf": session_csrf(page)})).status_code == 404
        assert (await client.post("/health/dead/999999/resend", data={"csrf": session_csrf(page)})).status_code == 404
    [claimed] = await queue.claim(10, timedelta(seconds=10))
    assert (claimed.id, claimed.chat_id, claimed.attempts) == (dead_id, CHAT, 1)
    [(operator, target, detail)] = await audited(console, "dead_letter_resent")
    assert (operator, target, _json(detail)) == ("alice", f"outbox_messages:{dead_id}", {"chat_id": CHAT, "method": "send_message"})


async def test_a_post_without_the_form_token_is_refused_and_changes_nothing(console: Console) -> None:
    row_id = await console.failed_update(10)
    dead_id = await console.dead_letter()
    async with console.operator() as client:
        for path in (f"/health/updates/{row_id}/retry", f"/health/updates/{row_id}/discard", f"/health/dead/{dead_id}/resend"):
            assert (await client.post(path)).status_code == 403, path
            assert (await client.post(path, data={"csrf": "forged"})).status_code == 403, path
    assert await console.rows("SELECT outcome, error FROM telegram_updates WHERE id = :i", i=row_id) == [
        ("failed", "RuntimeError('the step broke')")
    ]
    assert await console.rows("SELECT status, attempts FROM outbox_messages WHERE id = :i", i=dead_id) == [("dead", 5)]
    actions = await console.rows("SELECT action FROM operator_audit WHERE action NOT IN ('operator_added', 'login')")
    assert actions == []


async def test_the_poller_leader_is_named_on_postgresql_and_not_applicable_on_sqlite(console: Console) -> None:
    if console.database.is_sqlite:
        async with console.operator() as client:
            page = (await client.get("/health")).text
        assert card(page, "leader") == "Poller leader not applicable on SQLite (no lease: the one process polls)"
        return
    signed = POLLER_LOCK_KEY - (1 << 64) if POLLER_LOCK_KEY >= 1 << 63 else POLLER_LOCK_KEY
    holder = Database(pg_url())
    try:
        async with holder.engine.connect() as connection:
            await connection.execute(text("SET application_name = 'health-test-holder'"))
            if not await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": signed}):
                pytest.skip("another process on this server holds the poller lease")
            pid = await connection.scalar(text("SELECT pg_backend_pid()"))
            await connection.commit()
            async with console.operator() as client:
                held = card((await client.get("/health")).text, "leader")
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": signed})
            await connection.commit()
            async with console.operator() as client:
                free = card((await client.get("/health")).text, "leader")
    finally:
        await holder.dispose()
    assert held.startswith(f"Poller leader PostgreSQL backend pid {pid}, application 'health-test-holder'"), held
    assert free.startswith("Poller leader nobody holds the poller lease"), free


async def test_the_journal_depth_is_read_from_its_file(db_kind: str, tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "journal.sqlite3"
    async with migrated_database(db_kind, tmp_path) as database:
        if database.is_sqlite:
            settings = Settings(DATABASE_URL=database.url, JOURNAL_PATH=str(path))
            assert await HealthSection(database, settings).journal() == (
                "not applicable: no outage journal (SQLite primary, or JOURNAL_PATH empty)"
            )
            return
        settings = Settings(DATABASE_URL=pg_url(), JOURNAL_PATH=str(path))
        section = HealthSection(database, settings)
        assert await section.journal() == f"no journal file at {path} yet"
        journal = Journal(path)
        try:
            await journal.open(pg_url())  # and keeps it, as a running worker does
            steps = [{"chat_id": CHAT, "update_id": n, "writes": "{}", "applied_at": clock()} for n in (1, 2)]
            async with journal.database.transaction() as connection:
                await connection.execute(insert(JOURNAL_STEPS), steps)
                await connection.execute(insert(OUTBOX), [outbox_row(CHAT, "pending", clock())])
            async with running_console(database, clock, section) as console, console.operator() as client:
                page = (await client.get("/health")).text
        finally:
            await journal.close()
    assert card(page, "journal") == (
        f"Outage journal {path}: 2 steps and 0 updates to replay, 1 replies unsent, 0 steps set aside"
    )


async def test_a_database_that_does_not_answer_is_named_with_its_reason(db_kind: str, tmp_path: Path, clock: FakeClock) -> None:
    away = Database("postgresql://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    try:
        async with migrated_database(db_kind, tmp_path) as database:
            section = HealthSection(away, Settings(JOURNAL_PATH=""))
            async with running_console(database, clock, section) as console:
                async with console.operator() as client:
                    page = (await client.get("/health")).text
    finally:
        await away.dispose()
    database_card = card(page, "database")
    assert database_card.startswith("Database unreachable : ") and "127.0.0.1:1/nowhere" in database_card
    assert "Refused" in database_card or "OSError" in database_card, database_card
    assert 'id="orphans"' not in page and "Failed updates" not in page
    assert card(page, "latency") == "Step latency not measured in this process"


def _json(detail: Any) -> Any:
    """The audit's ``detail`` column as read back through ``text()``: JSON text, or already decoded."""
    return json.loads(detail) if isinstance(detail, str) else detail
