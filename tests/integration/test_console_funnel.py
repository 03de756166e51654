"""The flow funnel on both databases: a real engine's events summed, flushed into ``flow_funnel_counts`` and drawn by the console."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from durabot.bootstrap import build_app, build_engine
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.console.accounts import Accounts
from durabot.console.cases import CaseBook
from durabot.console.conversations_page import BAR_WIDTH, ConversationsSection
from durabot.console.equipment_page import EquipmentSection
from durabot.console.funnel import FUNNEL, FunnelRecorder
from durabot.console.health import Health
from durabot.console.metrics import Metrics
from durabot.console.server import ConsoleServer
from durabot.console.web import ConsolePages
from durabot.engine.events import Event
from durabot.engine.runner import Engine
from durabot.sandbox import SandboxClient
from durabot.service import SANDBOX_TOKEN, Service
from durabot.storage.database import Database
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from tests.conftest import migrated_database
from tests.integration.test_service import eventually

PASSWORD = "correct horse battery"
COMPLETE = ("/addmachine", "Press 3", "Haas", "VF-2", "SN-0042", "Hall B", "Oil weekly")
CANCELLED = ("/addmachine", "Lathe", "/cancel")
AT_MODEL_NUMBER = ("/addmachine", "Mill", "/skip")
_update_ids = itertools.count(5000)


@dataclass
class Rig:
    database: Database
    url: str
    clock: FakeClock
    recorder: FunnelRecorder
    engine: Engine

    async def talk(self, user_id: int, *texts: str) -> None:
        for text in texts:
            await self.engine.handle(Event.message(next(_update_ids), user_id, user_id, text))

    @contextlib.asynccontextmanager
    async def logged_in(self) -> AsyncIterator[httpx.AsyncClient]:
        """A client with a session, got through the real login form."""
        async with httpx.AsyncClient(base_url=self.url, follow_redirects=False) as client:
            page = await client.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            response = await client.post("/login", data={"csrf": csrf.group(1), "name": "alice", "password": PASSWORD})
            assert response.status_code == 302, response.text
            yield client

    async def conversations_page(self, **params: str) -> str:
        async with self.logged_in() as client:
            response = await client.get("/conversations", params=params)
        assert response.status_code == 200
        return response.text

    async def stored(self) -> dict[tuple[str, str, str], int]:
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(select(FUNNEL.c.flow, FUNNEL.c.event, FUNNEL.c.step, FUNNEL.c["count"]))).all()
        return {(flow, event, step): count for flow, event, step, count in rows}


@pytest.fixture
async def rig(db_kind: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Rig]:
    async with migrated_database(db_kind, tmp_path) as database:
        accounts = Accounts(database)
        await accounts.add("alice", PASSWORD, clock())
        recorder = FunnelRecorder(clock)
        engine = build_engine(SqlAlchemyUnitOfWorkFactory(database, clock), Settings(JOURNAL_PATH=""), clock, observer=recorder)
        sections = (EquipmentSection(database), ConversationsSection(database))
        pages = ConsolePages(accounts, CaseBook(database), clock, sections=sections)
        server = ConsoleServer(Health(database), Metrics(), "127.0.0.1", 0, pages=pages)
        await server.start()
        try:
            yield Rig(database, f"http://127.0.0.1:{server.ports['console']}", clock, recorder, engine)
        finally:
            await server.stop()


def funnel_rows(page: str, flow: str) -> dict[tuple[str, str], tuple[str, int, str]]:
    """A flow's funnel table: ``(event, step)`` → (label, count, share of started)."""
    section = page.split(f'<section class="card funnel" data-flow="{flow}">', 1)[1].split("</section>", 1)[0]
    found = re.findall(
        r'<tr class="funnel-row" data-event="(\w+)" data-step="(\w*)"><td>(.*?)</td><td>(\d+)</td><td>(.*?)</td></tr>', section
    )
    return {(event, step): (label, int(count), share) for event, step, label, count, share in found}


def bar_widths(page: str, flow: str) -> list[int]:
    section = page.split(f'<section class="card funnel" data-flow="{flow}">', 1)[1].split("</section>", 1)[0]
    svg = section.split("<svg", 1)[1].split("</svg>", 1)[0]
    return [int(width) for width in re.findall(r'<rect [^>]*width="(\d+)"', svg)]


def in_progress(page: str) -> list[tuple[str, str, str, int]]:
    """The in-progress table: (flow, step key, the row's text, count)."""
    rows = re.findall(r'<tr class="live" data-flow="(\w+)" data-step="(\w*)">(.*?)</tr>', page, re.S)
    result = []
    for flow, step, body in rows:
        cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", body, re.S)]
        result.append((flow, step, cells[1], int(cells[2])))
    return result


async def test_the_page_shows_each_flows_funnel_and_what_is_in_progress(rig: Rig) -> None:
    await rig.talk(21, *COMPLETE)
    await rig.talk(22, *CANCELLED)
    assert await rig.recorder.flush(rig.database)
    await rig.talk(23, *AT_MODEL_NUMBER)  # counted, not flushed yet: the page shows what is stored

    page = await rig.conversations_page()
    rows = funnel_rows(page, "add_machine")
    assert rows[("started", "")] == ("Started", 2, "100%")
    assert rows[("step", "nickname")] == ("Nickname", 2, "100%")
    assert rows[("step", "manufacturer")] == ("Manufacturer", 2, "100%")
    assert rows[("step", "model_number")] == ("Model number", 1, "50%")
    assert rows[("completed", "")] == ("Completed", 1, "50%")
    assert rows[("cancelled", "")] == ("Cancelled", 1, "50%")
    assert rows[("expired", "")] == ("Expired", 0, "0%")
    assert list(rows) == [
        ("started", ""), ("step", "nickname"), ("step", "manufacturer"), ("step", "model_number"),
        ("step", "serial_number"), ("step", "location"), ("step", "notes"),
        ("completed", ""), ("cancelled", ""), ("expired", ""),
    ]
    assert bar_widths(page, "add_machine") == [BAR_WIDTH] * 3 + [BAR_WIDTH // 2] * 6 + [0]
    assert "Nothing counted in this period." in page.split('data-flow="eb1a_intake">', 1)[1]
    assert in_progress(page) == [("add_machine", "model_number", "Model number model_number", 1)]
    assert '<a href="/conversations" class="here">Conversations</a>' in page

    assert await rig.recorder.flush(rig.database)
    rows = funnel_rows(await rig.conversations_page(), "add_machine")
    assert rows[("started", "")][1] == rows[("step", "nickname")][1] == 3


async def test_each_flush_adds_to_the_stored_counts(rig: Rig) -> None:
    await rig.talk(31, *CANCELLED)
    assert await rig.recorder.flush(rig.database)
    assert rig.recorder.pending == 0
    await rig.talk(32, *CANCELLED)
    await rig.talk(33, "/addmachine")
    assert await rig.recorder.flush(rig.database)
    assert await rig.recorder.flush(rig.database)  # nothing new: nothing added
    stored = await rig.stored()
    assert stored[("add_machine", "started", "")] == 3
    assert stored[("add_machine", "step", "nickname")] == 3
    assert stored[("add_machine", "step", "manufacturer")] == 2
    assert stored[("add_machine", "cancelled", "")] == 2


async def test_a_failed_flush_keeps_the_sums_for_the_next_one(rig: Rig, tmp_path: Path) -> None:
    await rig.talk(41, *CANCELLED)
    before = rig.recorder.pending
    assert before == 4  # started, nickname, manufacturer, cancelled
    unreachable = Database(f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}")  # no table: the insert fails
    try:
        assert await rig.recorder.flush(unreachable) is False
    finally:
        await unreachable.dispose()
    assert rig.recorder.pending == before
    await rig.talk(42, "/addmachine")
    assert await rig.recorder.flush(rig.database)
    stored = await rig.stored()
    assert stored[("add_machine", "started", "")] == 2 and stored[("add_machine", "cancelled", "")] == 1


async def test_the_period_counts_only_its_days(rig: Rig) -> None:
    await rig.talk(51, *CANCELLED)
    await rig.recorder.flush(rig.database)
    rig.clock.advance(days=10)
    await rig.talk(52, *COMPLETE)
    await rig.recorder.flush(rig.database)
    week = funnel_rows(await rig.conversations_page(days="7"), "add_machine")
    quarter = funnel_rows(await rig.conversations_page(days="30"), "add_machine")
    assert (week[("started", "")][1], week[("cancelled", "")][1], week[("completed", "")][1]) == (1, 0, 1)
    assert (quarter[("started", "")][1], quarter[("cancelled", "")][1], quarter[("completed", "")][1]) == (2, 1, 1)
    rig.clock.advance(days=1)
    today = await rig.conversations_page(days="1")
    assert "Nothing counted in this period." in today.split('data-flow="add_machine">', 1)[1].split("</section>", 1)[0]
    assert '<option value="1" selected>' in today
    assert '<option value="7" selected>' in await rig.conversations_page(days="5")  # not a period offered: a week


async def test_the_service_flushes_the_funnel_it_counted_when_it_stops(tmp_path: Path, clock: FakeClock) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'service.sqlite3'}", sandbox_port=0, inbox_poll_seconds=0.05)
    app = build_app(settings, clock)
    assert app.funnel is not None
    announced: list[str] = []
    stop = asyncio.Event()
    service = asyncio.create_task(Service(app, announce=announced.append).run(stop))

    async def announced_url() -> bool:
        return bool(announced)

    try:
        await eventually(announced_url, "the chat page address")
        url = announced[0].split("Chat with the bot at", 1)[1].strip().rstrip("/")
        async with SandboxClient(url, SANDBOX_TOKEN) as sandbox:
            await sandbox.send_text(61, "/addmachine")

            async def counted() -> bool:
                assert app.funnel is not None
                return app.funnel.pending == 2  # started, and the nickname asked

            await eventually(counted, "the funnel's first events")
        stop.set()
        await asyncio.wait_for(service, 30)
        async with app.database.engine.connect() as connection:
            rows = (await connection.execute(select(FUNNEL.c.event, FUNNEL.c.step, FUNNEL.c["count"]))).all()
        assert sorted(tuple(row) for row in rows) == [("started", "", 1), ("step", "nickname", 1)]
    finally:
        stop.set()
        await asyncio.gather(service, return_exceptions=True)
        await app.close()
