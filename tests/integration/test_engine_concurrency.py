"""Serialisation per chat across concurrent workers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from durabot.clock import FakeClock
from durabot.engine.events import Event
from durabot.engine.ports import Domains
from durabot.engine.registry import BasicFlowActions, Registry
from durabot.flows.model import Answers, Flow, Step
from durabot.replies import Reply
from durabot.storage.tables import ConversationStateRow, OutboxMessageRow
from tests.conftest import ScratchDatabase
from tests.integration.conftest import Harness

QUESTIONS = 51
CHAT, USER = 9001, 9002


class RecordNothing(BasicFlowActions):
    """Flow actions with no domain side."""

    async def check(self, domains: Domains, user_id: int, step: Step, value: Any) -> str | None:
        return None

    async def complete(self, domains: Domains, user_id: int, answers: Answers) -> Reply:
        return Reply("done")


def survey_registry() -> Registry:
    steps = tuple(Step(f"q{n}", f"Q{n}", f"Question {n}?") for n in range(1, QUESTIONS + 1))
    registry = Registry()
    registry.add_flow(Flow("survey", 1, "answering the survey", "survey", steps), RecordNothing(), "a long survey")
    return registry


async def started_survey(test_db: ScratchDatabase, clock: FakeClock) -> Harness:
    harness = Harness(test_db, clock, survey_registry())
    await harness.engine.handle(Event.message(1, CHAT, USER, "/survey"))
    return harness


def answers_event(n: int) -> Event:
    return Event.message(100 + n, CHAT, USER, f"a{n}")


async def test_fifty_concurrent_events_are_applied_one_at_a_time_in_update_id_order(
    test_db: ScratchDatabase, clock: FakeClock
) -> None:
    harness = await started_survey(test_db, clock)
    try:
        events = [answers_event(n) for n in range(1, 51)]
        random.Random(7).shuffle(events)
        await asyncio.gather(*(harness.engine.receive([event]) for event in events))
        results = await asyncio.gather(*(harness.engine.process_chat(CHAT) for _ in range(50)))
        applied = sorted(a.update_id for result in results for a in result)
        assert applied == [100 + n for n in range(1, 51)]

        [state] = await harness.rows(ConversationStateRow)
        assert state.state_data["answers"] == {f"q{n}": f"a{n}" for n in range(1, 51)}
        assert state.version == 51  # the start plus fifty steps, none lost to a concurrent overwrite

        outbox = sorted(await harness.rows(OutboxMessageRow), key=lambda row: row.id)
        sources = [row.source_update_id for row in outbox]
        assert sources == sorted(sources), "steps were applied out of update_id order"
        prompts = [row.payload["text"].split(" · ")[0] for row in outbox]
        assert prompts == [f"Step {n} of {QUESTIONS}" for n in range(1, 52)]
    finally:
        await harness.close()


async def test_fifty_concurrent_handle_calls_lose_nothing_and_double_nothing(
    test_db: ScratchDatabase, clock: FakeClock
) -> None:
    harness = await started_survey(test_db, clock)
    try:
        events = [answers_event(n) for n in range(1, 51)]
        await asyncio.gather(*(harness.engine.handle(event) for event in events + events[:10]))
        [state] = await harness.rows(ConversationStateRow)
        assert sorted(state.state_data["answers"].values()) == sorted(f"a{n}" for n in range(1, 51))
        assert state.version == 51
        outbox = await harness.rows(OutboxMessageRow)
        assert len(outbox) == 51
    finally:
        await harness.close()


@pytest.mark.postgres
async def test_two_chats_on_postgresql_do_not_wait_for_each_others_locks(
    postgres_db: ScratchDatabase, clock: FakeClock
) -> None:
    harness = Harness(postgres_db, clock)
    try:
        async with harness.factory() as held:
            await held.lock_chat(1)
            blocked = asyncio.create_task(harness.engine.handle(Event.message(10, 1, 1, "/addmachine")))
            other = await asyncio.wait_for(harness.engine.handle(Event.message(11, 2, 2, "/addmachine")), 30)
            assert [a.update_id for a in other] == [11]
            await asyncio.sleep(0.3)
            assert not blocked.done(), "chat 1 went ahead although its lock was held"
        assert [a.update_id for a in await asyncio.wait_for(blocked, 30)] == [10]
    finally:
        await harness.close()
