"""The operator console over HTTP, on both databases: login, sessions, CSRF, throttling, the cases, reviews and exports."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import text

from durabot.bootstrap import build_engine
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.console.accounts import Accounts
from durabot.console.cases import CaseBook
from durabot.console.health import Health
from durabot.console.metrics import Metrics
from durabot.console.server import ConsoleServer
from durabot.console.web import ConsolePages, LoginThrottle
from durabot.engine.events import Event
from durabot.storage.database import Database
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from tests.conftest import migrated_database
from tests.integration.intake_answers import BASIC

PASSWORD = "correct horse battery"
CLIENT = 7701


@dataclass
class Console:
    database: Database
    url: str

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False)

    async def log_in(self, client: httpx.AsyncClient, password: str = PASSWORD, name: str = "alice") -> httpx.Response:
        page = await client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        return await client.post("/login", data={"csrf": csrf.group(1), "name": name, "password": password, "next": "/cases"})

    async def case_id(self) -> UUID:
        """The one case's id (SQLite stores it as 32 hex digits, PostgreSQL as a uuid)."""
        [(stored,)] = await self.rows("SELECT case_id FROM cases")
        return UUID(str(stored))

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        async with self.database.engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql))]


@pytest.fixture
async def console(db_kind: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Console]:
    async with migrated_database(db_kind, tmp_path) as database:
        accounts = Accounts(database)
        await accounts.add("alice", PASSWORD, clock())
        engine = build_engine(SqlAlchemyUnitOfWorkFactory(database, clock), Settings(JOURNAL_PATH=""), clock)
        await engine.handle(Event.message(1, CLIENT, CLIENT, "/intake_start"))
        for n, (_, answer) in enumerate(BASIC[:3], start=2):
            await engine.handle(Event.message(n, CLIENT, CLIENT, answer))
        pages = ConsolePages(accounts, CaseBook(database), clock, LoginThrottle(allowed=3))
        server = ConsoleServer(Health(database), Metrics(), "127.0.0.1", 0, pages=pages)
        await server.start()
        try:
            yield Console(database, f"http://127.0.0.1:{server.ports['console']}")
        finally:
            await server.stop()


async def test_every_page_needs_a_login_and_a_login_needs_the_right_password(console: Console) -> None:
    async with console.client() as client:
        for path in ("/", "/cases", "/cases.csv"):
            response = await client.get(path)
            assert response.status_code == 302 and response.headers["location"].startswith("/login"), path
        refused = await console.log_in(client, password="wrong password!")
        assert refused.status_code == 401 and "do not match" in refused.text
        assert "durabot_session" not in client.cookies
        accepted = await console.log_in(client)
        assert accepted.status_code == 302 and accepted.headers["location"] == "/cases"
        cookie = accepted.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert (await client.get("/cases")).status_code == 200
    audit = await console.rows("SELECT operator_name, action FROM operator_audit ORDER BY id")
    assert audit == [(None, "operator_added"), (None, "login_failed"), ("alice", "login")]


async def test_a_login_without_its_form_token_is_refused(console: Console) -> None:
    async with console.client() as client:
        response = await client.post("/login", data={"name": "alice", "password": PASSWORD})
        assert response.status_code == 403
        assert "durabot_session" not in client.cookies


async def test_failed_logins_are_throttled_per_client(console: Console) -> None:
    async with console.client() as client:
        for _ in range(3):
            assert (await console.log_in(client, password="nope nope nope")).status_code == 401
        throttled = await console.log_in(client)  # even the right password, for a while
        assert throttled.status_code == 429 and "Too many failed attempts" in throttled.text


async def test_the_case_list_and_page_show_the_intake_and_its_answers(console: Console) -> None:
    async with console.client() as client:
        await console.log_in(client)
        listing = await client.get("/cases", params={"q": "ivanova"})
        assert "Maria Ivanova" in listing.text and "draft" in listing.text
        assert "Maria" not in (await client.get("/cases", params={"q": "nobody"})).text
        assert "Maria" not in (await client.get("/cases", params={"status": "intake_complete"})).text
        case_id = await console.case_id()
        page = await client.get(f"/cases/{case_id}")
        assert page.status_code == 200
        assert "Basic information" in page.text and "maria@example.org" in page.text
        assert re.search(r"UTC</th><td>started</td>", page.text), "the history begins with the intake's start"
        assert page.headers["X-Frame-Options"] == "DENY" and "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert (await client.get(f"/cases/{case_id}/print")).status_code == 200
        missing = await client.get("/cases/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404


async def test_a_review_status_is_stored_and_audited_and_needs_the_session_token(console: Console) -> None:
    async with console.client() as client:
        await console.log_in(client)
        case_id = await console.case_id()
        page = (await client.get(f"/cases/{case_id}")).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        forged = await client.post(f"/cases/{case_id}/review", data={"status": "accepted"})
        assert forged.status_code == 403
        assert await console.rows("SELECT count(*) FROM case_reviews") == [(0,)]
        saved = await client.post(f"/cases/{case_id}/review", data={"status": "needs_info", "csrf": csrf.group(1)})
        assert saved.status_code == 303
        assert await console.rows("SELECT status, updated_by FROM case_reviews") == [("needs_info", "alice")]
        assert "needs info" in (await client.get("/cases", params={"status": "needs_info"})).text
        bad = await client.post(f"/cases/{case_id}/review", data={"status": "bribed", "csrf": csrf.group(1)})
        assert bad.status_code == 400
    audit = await console.rows("SELECT action, target FROM operator_audit WHERE action = 'review_set'")
    case_id = await console.case_id()
    assert audit == [("review_set", str(case_id))]


async def test_exports_of_one_case_and_of_all_are_audited(console: Console) -> None:
    async with console.client() as client:
        await console.log_in(client)
        case_id = await console.case_id()
        exported = (await client.get(f"/cases/{case_id}.json")).json()
        assert [item["event"] for item in exported["history"]] == ["started"]
        assert exported["case_id"] == str(case_id) and exported["answers"]["Basic information"]["Full legal name"] == "Maria Ivanova"
        table = list(csv.DictReader(io.StringIO((await client.get("/cases.csv")).text)))
        assert [(row["client"], row["status"], row["review"]) for row in table] == [("Maria Ivanova", "draft", "new")]
    actions = [action for (action,) in await console.rows("SELECT action FROM operator_audit ORDER BY id")]
    assert actions[-2:] == ["case_exported", "cases_exported"]


async def test_logging_out_ends_the_session(console: Console) -> None:
    async with console.client() as client:
        await console.log_in(client)
        page = (await client.get("/cases")).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        token = client.cookies["durabot_session"]
        assert (await client.post("/logout", data={"csrf": csrf.group(1)})).status_code == 302
    async with console.client() as other:
        other.cookies.set("durabot_session", token)
        assert (await other.get("/cases")).status_code == 302, "the old cookie opens nothing any more"
