"""A database that is unavailable during a step leaves the update pending: no failure, no apology, nothing lost."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text

from durabot.actions.add_machine import AddMachineActions
from durabot.bootstrap import build_registry
from durabot.clock import FakeClock
from durabot.engine.ports import Domains
from durabot.engine.step_view import RecordingDomains
from durabot.engine.registry import Registry
from durabot.engine.runner import APOLOGY
from durabot.flows.model import Answers
from durabot.replies import Reply
from durabot.storage.tables import OutboxMessageRow, TelegramUpdateRow, UserMachineRow
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWork
from tests.conftest import ScratchDatabase
from tests.integration.conftest import Chat, Harness

ANSWERS = ("/addmachine", "Press 9", "Haas", "VF-2", "SN-1", "Hall B")
LAST_ANSWER = "oil weekly"
STARTING_UP = "DO $$ BEGIN RAISE EXCEPTION 'the database system is starting up' USING ERRCODE = '57P03'; END $$"


class DatabaseGoesAwayOnSave(AddMachineActions):
    """Saves the machine, then meets an unavailable database ``outages`` times before the step commits."""

    def __init__(self, outages: int, server_side: bool) -> None:
        super().__init__()
        self.outages = outages
        self.server_side = server_side

    async def complete(self, domains: Domains, user_id: int, answers: Answers) -> Reply:
        reply = await super().complete(domains, user_id, answers)
        if self.outages > 0:
            self.outages -= 1
            if self.server_side:
                assert isinstance(domains, RecordingDomains) and isinstance(domains.stored, SqlAlchemyUnitOfWork)
                await domains.stored.connection.execute(text(STARTING_UP))  # the server answers with SQLSTATE 57P03
            raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
        return reply


def registry_with(actions: AddMachineActions) -> Registry:
    registry = build_registry()
    entry = registry.flows[0]
    registry.flows[0] = type(entry)(entry.flow, actions, entry.description)
    return registry


async def check_outage_leaves_the_update_pending(test_db: ScratchDatabase, clock: FakeClock, server_side: bool) -> None:
    outage = DatabaseGoesAwayOnSave(outages=4, server_side=server_side)  # on arrival, then every attempt of one pass
    harness = Harness(test_db, clock, registry_with(outage))
    chat = Chat(harness)
    try:
        for answer in ANSWERS:
            await chat.say(answer)
        outbox_before = len(await harness.rows(OutboxMessageRow))

        with pytest.raises(Exception) as raised:
            await chat.say(LAST_ANSWER)
        assert harness.factory.is_unavailable(raised.value)

        [last] = await harness.rows(TelegramUpdateRow, TelegramUpdateRow.processed_at.is_(None))
        assert last.outcome is None, "the update stays pending while the database is unavailable"
        assert await harness.rows(TelegramUpdateRow, TelegramUpdateRow.outcome == "failed") == []
        outbox = await harness.rows(OutboxMessageRow)
        assert len(outbox) == outbox_before and APOLOGY not in [row.payload.get("text") for row in outbox]
        assert await harness.rows(UserMachineRow) == []

        # The database is back: the next processing pass applies the waiting update, answer and all.
        assert await harness.engine.process_pending() == 1
        [machine] = await harness.rows(UserMachineRow)
        assert (machine.nickname, machine.location, machine.notes) == ("Press 9", "Hall B", LAST_ANSWER)
        texts = await harness.outbox_texts(chat.chat_id)
        assert texts[-1].startswith("Saved “Press 9”") and APOLOGY not in texts
    finally:
        await harness.close()


async def test_a_step_that_meets_a_starting_database_leaves_its_update_pending_and_sends_no_apology(
    test_db: ScratchDatabase, clock: FakeClock
) -> None:
    await check_outage_leaves_the_update_pending(test_db, clock, server_side=False)


@pytest.mark.postgres
async def test_a_57p03_answer_from_postgresql_during_a_step_leaves_its_update_pending(
    postgres_db: ScratchDatabase, clock: FakeClock
) -> None:
    await check_outage_leaves_the_update_pending(postgres_db, clock, server_side=True)
