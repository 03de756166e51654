"""The console's equipment page over HTTP, on both databases: every machine, the search, paging, the CSV export."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from durabot.clock import FakeClock
from durabot.console.accounts import AUDIT, Accounts
from durabot.console.cases import CaseBook
from durabot.console.conversations_page import ConversationsSection
from durabot.console.equipment_page import EquipmentSection
from durabot.console.health import Health
from durabot.console.metrics import Metrics
from durabot.console.server import ConsoleServer
from durabot.console.web import ConsolePages
from durabot.storage.database import Database
from durabot.storage.repositories import MACHINES
from tests.conftest import migrated_database

PASSWORD = "correct horse battery"


@dataclass
class Console:
    database: Database
    url: str
    clock: FakeClock

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False)

    @contextlib.asynccontextmanager
    async def logged_in(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client with a session, got through the real login form."""
        async with self.client() as client:
            page = await client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            response = await client.post("/login", data={"csrf": csrf.group(1), "name": "alice", "password": PASSWORD})
            assert response.status_code == 302, response.text
            yield client

    async def add_machine(self, user_id: int, nickname: str, **fields: Any) -> None:
        self.clock.advance(minutes=1)  # newest first: each machine a minute after the last
        row = {"user_id": user_id, "nickname": nickname, "nickname_key": nickname.casefold(),
               "created_at": self.clock(), "updated_at": self.clock(), **fields}
        async with self.database.transaction() as connection:
            await connection.execute(insert(MACHINES), row)


@pytest.fixture
async def console(db_kind: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Console]:
    async with migrated_database(db_kind, tmp_path) as database:
        accounts = Accounts(database)
        await accounts.add("alice", PASSWORD, clock())
        sections = (EquipmentSection(database), ConversationsSection(database))
        pages = ConsolePages(accounts, CaseBook(database), clock, sections=sections)
        server = ConsoleServer(Health(database), Metrics(), "127.0.0.1", 0, pages=pages)
        await server.start()
        console = Console(database, f"http://127.0.0.1:{server.ports['console']}", clock)
        await console.add_machine(11, "Press 3", manufacturer="Haas", model_number="VF-2", serial_number="SN-0042",
                                  location="Hall B", notes="Oil weekly", photo_file_id="AgACAgIAAxkBAAIB")
        await console.add_machine(12, "=1+2", manufacturer="Mazak", model_number="QT-200", serial_number="+123",
                                  location="@home")
        await console.add_machine(13, "Lathe", manufacturer="Emco", location="hall b annex")
        try:
            yield console
        finally:
            await server.stop()


def nicknames(page: str) -> list[str]:
    """The nicknames in the equipment table, in its order (the second cell of each machine's row)."""
    return [cells[1] for cells in (re.findall(r"<td>(.*?)</td>", row, re.S) for row in
                                   re.findall(r'<tr class="machine">(.*?)</tr>', page, re.S))]


async def test_without_a_login_the_equipment_and_conversations_pages_send_to_the_login(console: Console) -> None:
    async with console.client() as client:
        for path in ("/equipment", "/equipment.csv", "/conversations"):
            response = await client.get(path)
            assert response.status_code == 302, path
            assert response.headers["location"] == f"/login?next={path}"


async def test_every_machine_is_listed_newest_first_with_its_details_and_whether_a_photo_is_kept(console: Console) -> None:
    async with console.logged_in() as client:
        page = await client.get("/equipment")
    assert page.status_code == 200
    assert nicknames(page.text) == ["Lathe", "=1+2", "Press 3"]
    [press] = [row for row in re.findall(r'<tr class="machine">(.*?)</tr>', page.text, re.S) if "Press 3" in row]
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", press, re.S)]
    assert cells == ["11", "Press 3", "Haas", "VF-2", "SN-0042", "Hall B", "Oil weekly", "",
                     (console.clock() - timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M")]
    assert page.text.count('alt="photo kept"') == 1 and re.search(r'<img src="/equipment/\d+/photo"', press)
    assert '<a href="/equipment" class="here">Equipment</a>' in page.text


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ("HALL B", ["Lathe", "Press 3"]),  # location, either case
        ("haas", ["Press 3"]),  # manufacturer
        ("qt-2", ["=1+2"]),  # model
        ("sn-004", ["Press 3"]),  # serial
        ("lath", ["Lathe"]),  # nickname
        ("oil", []),  # notes are not searched
        ("%", []),  # a wildcard is a character like any other
        ("_", []),
    ],
)
async def test_the_search_narrows_the_list(console: Console, search: str, found: list[str]) -> None:
    async with console.logged_in() as client:
        page = await client.get("/equipment", params={"q": search})
    assert nicknames(page.text) == found
    assert f"({len(found)})" in page.text


async def test_fifty_machines_a_page(console: Console) -> None:
    for n in range(52):
        await console.add_machine(20 + n, f"Spare {n:02}")
    async with console.logged_in() as client:
        first = await client.get("/equipment")
        second = await client.get("/equipment", params={"page": "2"})
        beyond = await client.get("/equipment", params={"page": "9"})
    assert nicknames(first.text) == [f"Spare {n:02}" for n in range(51, 1, -1)]
    assert "Page 1 of 2" in first.text and 'href="/equipment?page=2"' in first.text
    assert nicknames(second.text) == ["Spare 01", "Spare 00", "Lathe", "=1+2", "Press 3"]
    assert 'href="/equipment?page=1"' in second.text and "Next" not in second.text
    assert nicknames(beyond.text) == nicknames(second.text)


def csv_rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


async def test_the_csv_has_every_machine_with_formulas_defused_and_is_audited(console: Console) -> None:
    async with console.logged_in() as client:
        response = await client.get("/equipment.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="machines.csv"' in response.headers["content-disposition"]
    rows = csv_rows(response.text)
    assert [row["nickname"] for row in rows] == ["Lathe", "'=1+2", "Press 3"]
    formula = rows[1]
    assert (formula["user_id"], formula["serial_number"], formula["location"]) == ("12", "'+123", "'@home")
    assert (rows[2]["manufacturer"], rows[2]["photo"], rows[0]["photo"], rows[0]["notes"]) == ("Haas", "yes", "no", "")
    async with console.database.engine.connect() as connection:
        audited = (await connection.execute(select(AUDIT.c.operator_name, AUDIT.c.action, AUDIT.c.detail)
                                            .where(AUDIT.c.action == "machines_exported"))).all()
    [(name, _, detail)] = audited
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert (name, detail["count"], detail["search"]) == ("alice", 3, "")


async def test_the_csv_of_a_search_has_only_its_machines(console: Console) -> None:
    async with console.logged_in() as client:
        page = await client.get("/equipment", params={"q": "hall b"})
        assert 'href="/equipment.csv?q=hall+b"' in page.text
        response = await client.get("/equipment.csv", params={"q": "hall b"})
    assert [row["nickname"] for row in csv_rows(response.text)] == ["Lathe", "Press 3"]
