"""The outage journal in process, on the shared PostgreSQL and a journal file: write-through, steps, replay, merges."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from durabot.bootstrap import build_engine, build_registry
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.engine.events import Event
from durabot.engine.runner import Engine
from durabot.journal.mirror import Mirror
from durabot.journal.replay import Replayer
from durabot.journal.routing import JournalingUnitOfWorkFactory, Route
from durabot.journal.seed import seed_journal
from durabot.journal.store import Journal
from durabot.storage.database import Database
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from tests.conftest import migrated_database
from tests.integration.intake_answers import BASIC

pytestmark = pytest.mark.postgres

CHAT = 9101
MACHINE = ["/addmachine", "Press 12", "Haas", "VF-2", "SN-77", "Bay 4", "greased monthly"]
_ids = itertools.count(1)


@dataclass
class Setup:
    primary: Database
    journal: Journal
    mirror: Mirror
    route: Route
    engine: Engine
    replayer: Replayer

    async def say(self, text: str, chat: int = CHAT) -> list[str]:
        applied = await self.engine.handle(Event.message(next(_ids), chat, chat, text))
        return [getattr(message, "text", "") for result in applied for message in result.outgoing]

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        async with self.primary.engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(sql))]


@pytest.fixture
async def setup(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Setup]:
    async with migrated_database("postgresql", tmp_path) as primary:
        journal = Journal(tmp_path / "journal.sqlite3", clock)
        await journal.open("primary-under-test")
        mirror, route, registry = Mirror(journal.path), Route(), build_registry(clock)
        mirror.start()
        primary_units = SqlAlchemyUnitOfWorkFactory(primary, clock)
        engine = build_engine(JournalingUnitOfWorkFactory(primary_units, journal, route, mirror), Settings(), clock, registry)
        replayer = Replayer(journal, primary_units, registry, Settings().state_ttl, clock)
        try:
            yield Setup(primary, journal, mirror, route, engine, replayer)
        finally:
            mirror.stop()
            await journal.close()


async def test_a_conversation_begun_on_the_primary_goes_on_in_the_journal_and_is_replayed_once(setup: Setup) -> None:
    for text in MACHINE[:3]:
        await setup.say(text)
    assert setup.mirror.flush()
    setup.route.release(engaged=True)  # the primary is away
    replies = [await setup.say(text) for text in MACHINE[3:]]
    assert replies[0][0].startswith("Step 4 of 6"), "the journal knew where the conversation was"
    assert replies[-1][0].startswith("Saved “Press 12”")
    assert await setup.rows("SELECT count(*) FROM user_machines") == [(0,)]

    report = await setup.replayer.replay()
    assert (report.updates, report.steps, report.conflicts, report.replies_sent_before) == (4, 4, 0, 0)
    assert report.replies_to_send == 4, "nothing was sent from the journal here: the primary's relay sends them"
    assert await setup.rows("SELECT nickname, manufacturer, model_number, notes FROM user_machines") == [
        ("Press 12", "Haas", "VF-2", "greased monthly")
    ]
    assert await setup.rows("SELECT count(*) FROM conversation_states") == [(0,)]
    assert (await setup.journal.depth()).empty
    assert (await setup.replayer.replay()).updates == 0


async def test_a_replayed_update_already_in_the_primary_is_not_applied_twice(setup: Setup) -> None:
    setup.route.release(engaged=True)
    await setup.say("/library")
    async with setup.journal.database.engine.connect() as connection:
        row = (await connection.execute(text("SELECT bot_id, update_id, fingerprint FROM telegram_updates"))).one()
    async with setup.primary.engine.begin() as connection:  # as if a replay had committed it and then died
        await connection.execute(
            text(
                "INSERT INTO telegram_updates (bot_id, update_id, fingerprint, raw, received_at, processed_at, outcome) "
                "VALUES (:bot_id, :update_id, :fingerprint, '{}', now(), now(), 'applied')"
            ),
            dict(row._mapping),
        )
    report = await setup.replayer.replay()
    assert (report.updates, report.already_there) == (0, 1)
    assert await setup.rows("SELECT count(*) FROM outbox_messages") == [(0,)]
    assert (await setup.journal.depth()).empty


async def test_an_intake_opened_in_the_journal_is_merged_into_the_clients_open_intake(setup: Setup) -> None:
    setup.mirror.stop()  # the journal never heard of the intake the primary has
    await setup.say("/intake_start")
    for _, answer in BASIC[:3]:
        await setup.say(answer)
    [(case_id,)] = await setup.rows("SELECT case_id FROM cases")

    setup.route.release(engaged=True)
    assert (await setup.say("/intake_start"))[0].startswith("Basic information (part 1 of 6) · Question 1 of 8")
    await setup.say("Maria I. Ivanova")  # the name again, spelled differently this time
    with capture_logs() as logs:
        report = await setup.replayer.replay()
    assert [e["kind"] for e in logs if e["event"] == "journal.conflict"] == ["conversation_merged", "intake_merged"]
    assert report.conflicts == 2

    assert await setup.rows("SELECT case_id, status FROM cases") == [(case_id, "draft")]
    [(answers,)] = await setup.rows("SELECT answers FROM case_intake_progress")
    assert answers["answers"]["full_name"] == "Maria I. Ivanova", "the journal's answer wins over the older one"
    assert set(answers["answers"]) == {"full_name", "email", "phone"}, "and the primary's other answers stay"
    [(step, state)] = await setup.rows("SELECT current_step, state_data FROM conversation_states")
    assert state["answers"]["full_name"] == "Maria I. Ivanova" and set(state["answers"]) == {"full_name", "email", "phone"}
    assert step == "eb1a_intake:date_of_birth", "the next question is the first one neither side answered"

    setup.route.release(engaged=False)  # the primary is back: the intake goes on where both left it
    [reply] = await setup.say(BASIC[3][1])
    assert reply.startswith("Basic information (part 1 of 6) · Question 5 of 8"), reply


async def test_a_journal_begun_after_the_conversation_is_seeded_from_the_primary(setup: Setup, clock: FakeClock) -> None:
    setup.mirror.stop()  # steps applied while no journal was there (another worker, an earlier container)
    for answer in MACHINE[:3]:
        await setup.say(answer)
    await setup.say("/intake_start", chat=CHAT + 1)  # and a client's open intake
    await setup.say(BASIC[0][1], chat=CHAT + 1)
    setup.mirror = Mirror(setup.journal.path)
    setup.mirror.start()

    seeded = await seed_journal(setup.primary, setup.mirror, clock())
    assert (seeded.conversations, seeded.cases) == (2, 1)
    assert setup.mirror.flush()
    setup.route.release(engaged=True)
    assert (await setup.say(MACHINE[3]))[0].startswith("Step 4 of 6"), "the journal knew where the machine was"
    assert "Question 3 of 8" in (await setup.say(BASIC[1][1], chat=CHAT + 1))[0], "and where the intake was"
    setup.mirror.stop()


async def test_seeding_never_replaces_a_newer_copy_in_the_journal(setup: Setup, clock: FakeClock) -> None:
    for answer in MACHINE[:2]:
        await setup.say(answer)
    async with setup.primary.engine.connect() as connection:
        [stale] = (await connection.execute(text("SELECT version, state_data, current_step FROM conversation_states"))).all()
    for answer in MACHINE[2:4]:
        await setup.say(answer)
    assert setup.mirror.flush()
    async with setup.primary.engine.begin() as connection:  # as if read before the last two steps
        await connection.execute(
            text("UPDATE conversation_states SET version = :v, state_data = :s, current_step = :c"),
            {"v": stale.version, "s": json.dumps(stale.state_data), "c": stale.current_step},
        )
    await seed_journal(setup.primary, setup.mirror, clock())
    assert setup.mirror.flush()
    setup.route.release(engaged=True)
    assert (await setup.say(MACHINE[4]))[0].startswith("Step 5 of 6"), "the write-through copy stayed"


async def test_a_step_the_primary_will_not_take_is_set_aside_and_holds_back_no_other(setup: Setup) -> None:
    setup.route.release(engaged=True)
    await setup.say("/library")
    await setup.say("/addmachine")
    async with setup.journal.database.transaction() as connection:  # the first step's write-set cannot be read
        first = (await connection.execute(text("SELECT min(seq) FROM journal_steps"))).scalar_one()
        await connection.execute(text("UPDATE journal_steps SET writes = '{\"not\": \"a write-set\"}' WHERE seq = :s"), {"s": first})
    with capture_logs() as logs:
        report = await setup.replayer.replay()
    assert (report.set_aside, report.updates, report.steps) == (1, 1, 1)
    assert [e["log_level"] for e in logs if e["event"] == "journal.replay_set_aside"] == ["error"]
    assert await setup.rows("SELECT outcome FROM telegram_updates ORDER BY update_id") == [("failed",), ("applied",)]
    [(error,)] = await setup.rows("SELECT error FROM telegram_updates WHERE outcome = 'failed'")
    assert error.startswith("not replayed from the outage journal: UnreadableWriteSetError")
    texts = [payload["text"] for (payload,) in await setup.rows("SELECT payload FROM outbox_messages ORDER BY id")]
    assert any(t.startswith("Sorry — something went wrong") for t in texts), texts
    assert any(t.startswith("Step 1 of 6") for t in texts), "the next step was replayed all the same"
    assert (await setup.journal.depth()).empty
    async with setup.journal.database.engine.connect() as connection:
        kept = (await connection.execute(text("SELECT update_id, writes FROM journal_set_aside"))).all()
    assert len(kept) == 1 and "not" in kept[0].writes, "the step is kept for an operator"
