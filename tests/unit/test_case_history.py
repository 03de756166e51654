"""A case keeps its history — started, resumed, completed or cancelled, recovered — for the practice to read."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from durabot.bootstrap import build_engine
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.domain.cases import EB1A, Case, CaseService, CaseStatus, history_of
from durabot.engine.events import Event
from durabot.testing import FakeUnitOfWorkFactory, InMemoryCaseRepository
from tests.integration.intake_answers import ALL

CLIENT = 3303


async def test_an_intake_started_paused_resumed_and_completed_says_so_in_order() -> None:
    clock = FakeClock()
    factory = FakeUnitOfWorkFactory(clock)
    engine = build_engine(factory, Settings(JOURNAL_PATH=""), clock)
    ids = iter(range(1, 1000))
    await engine.handle(Event.message(next(ids), CLIENT, CLIENT, "/intake_start"))
    await engine.handle(Event.message(next(ids), CLIENT, CLIENT, ALL[0][1]))
    clock.advance(hours=30)  # the conversation expires; the case and its progress stay
    await engine.cleanup()
    await engine.handle(Event.message(next(ids), CLIENT, CLIENT, "/intake_start"))
    for _, answer in ALL[1:]:
        clock.advance(seconds=5)
        await engine.handle(Event.message(next(ids), CLIENT, CLIENT, answer))
    [case] = factory.data.cases.values()
    events = history_of(case)
    assert [event for event, _ in events] == ["started", "resumed", "intake_complete"]
    assert events[0][1] < events[1][1] < events[2][1]


async def test_a_cancelled_intake_and_a_recovered_case_are_in_the_history() -> None:
    clock = FakeClock()
    factory = FakeUnitOfWorkFactory(clock)
    engine = build_engine(factory, Settings(JOURNAL_PATH=""), clock)
    await engine.handle(Event.message(1, CLIENT, CLIENT, "/intake_start"))
    await engine.handle(Event.message(2, CLIENT, CLIENT, "/intake_cancel"))
    [case] = factory.data.cases.values()
    assert [event for event, _ in history_of(case)] == ["started", "cancelled"]

    cases = InMemoryCaseRepository(factory.data)
    recovered = await CaseService(cases).create(CLIENT, CLIENT, clock(), case_id=uuid4())
    assert [event for event, _ in history_of(recovered)] == ["recovered"]


def test_a_case_from_before_the_history_was_kept_starts_with_its_creation() -> None:
    clock = FakeClock()
    old = Case(uuid4(), CLIENT, CLIENT, "Intake Session", EB1A, CaseStatus.DRAFT, clock() - timedelta(days=3), clock())
    assert history_of(old) == [("started", old.created_at)]
