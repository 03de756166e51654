"""The hot path: an update whose chat has nothing waiting is stored and applied in one transaction."""

from __future__ import annotations

import pytest

from durabot.bootstrap import build_engine
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.engine.events import Event
from durabot.engine.runner import Engine
from durabot.testing import FakeUnitOfWork, FakeUnitOfWorkFactory

CHAT = 41


class CountingFactory(FakeUnitOfWorkFactory):
    """Fake units of work that count how many were opened: one per transaction."""

    opened = 0

    def __call__(self) -> FakeUnitOfWork:
        self.opened += 1
        return super().__call__()


@pytest.fixture
def factory(clock: FakeClock) -> CountingFactory:
    return CountingFactory(clock)


@pytest.fixture
def engine(factory: CountingFactory, settings: Settings, clock: FakeClock) -> Engine:
    return build_engine(factory, settings, clock)


def message(update_id: int, text: str) -> Event:
    return Event.message(update_id, CHAT, CHAT, text)


def outcomes(factory: FakeUnitOfWorkFactory) -> list[tuple[int, str | None]]:
    return [(r.update_id, r.outcome) for r in factory.data.inbox.values()]


async def test_an_update_of_a_quiet_chat_is_stored_and_applied_in_one_transaction(
    engine: Engine, factory: CountingFactory
) -> None:
    intake = await engine.take_in([message(1, "/addmachine")])
    assert (intake.new, intake.waiting) == (1, 0)
    assert factory.opened == 1
    assert outcomes(factory) == [(1, "applied")]
    assert factory.sent_texts(CHAT)[0].startswith("Step 1 of 6")


async def test_a_redelivery_on_the_hot_path_changes_nothing(engine: Engine, factory: FakeUnitOfWorkFactory) -> None:
    await engine.take_in([message(1, "/addmachine")])
    intake = await engine.take_in([message(1, "/addmachine")])
    assert (intake.new, intake.waiting) == (0, 0)
    assert len(factory.sent_texts(CHAT)) == 1


async def test_an_update_behind_a_backlog_waits_its_turn_and_the_chat_keeps_its_order(
    engine: Engine, factory: FakeUnitOfWorkFactory
) -> None:
    await engine.receive([message(1, "/addmachine")])
    intake = await engine.take_in([message(2, "Lathe")])
    assert (intake.new, intake.waiting) == (1, 1)
    assert outcomes(factory) == [(1, None), (2, None)]
    applied = await engine.process_chat(CHAT)
    assert [a.update_id for a in applied] == [1, 2]
    assert factory.sent_texts(CHAT)[1].startswith("Step 2 of 6")


async def test_a_batch_is_taken_per_chat_in_update_id_order(engine: Engine, factory: FakeUnitOfWorkFactory) -> None:
    other = Event.message(5, CHAT + 1, CHAT + 1, "/addmachine")
    intake = await engine.take_in([message(4, "Lathe"), other, message(3, "/addmachine")])
    assert (intake.new, intake.waiting) == (3, 0)
    assert [r.update_id for r in factory.data.inbox.values() if r.chat_id == CHAT] == [3, 4]
    assert factory.sent_texts(CHAT)[1].startswith("Step 2 of 6")


async def test_processing_a_backlog_ends_without_an_empty_look_up(engine: Engine, factory: CountingFactory) -> None:
    await engine.receive([message(1, "/addmachine"), message(2, "Lathe"), message(3, "/skip")])
    before = factory.opened
    applied = await engine.process_chat(CHAT)
    assert [a.update_id for a in applied] == [1, 2, 3]
    assert factory.opened - before == 3, "one transaction per update, and none to learn that nothing is left"
