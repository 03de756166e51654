"""A step returns its writes as data: the write-set's coalescing, the step's view of what it wrote, and replay."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from durabot.bootstrap import build_registry
from durabot.domain.cases import Case, CaseStatus, IntakeProgress
from durabot.domain.machines import MachineDraft
from durabot.engine.apply import apply_writes
from durabot.engine.conversation import Conversation
from durabot.engine.dispatch import Dispatcher
from durabot.engine.events import Event
from durabot.engine.step_view import RecordingDomains, StepConversations
from durabot.engine.writes import ConversationWrite, DomainWrite, Handled, WriteSet, new_conversation_id
from durabot.flows.add_machine import ADD_MACHINE
from durabot.testing import FakeUnitOfWorkFactory

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=24)


def fresh(chat_id: int = 7) -> Conversation:
    return Conversation.start(ADD_MACHINE, chat_id, chat_id, NOW, TTL)


def test_event_json_holds_every_field_and_reads_back() -> None:
    event = Event.button(5, -100, 7, "f:1:2:3", "cb")
    assert set(event.to_json()) == {field.name for field in dataclasses.fields(Event)}
    assert Event.from_json(event.to_json()) == event


def test_new_conversation_ids_are_unique_grow_with_time_and_fit_a_signed_64_bit_column() -> None:
    burst = [new_conversation_id() for _ in range(1000)]
    assert len(set(burst)) == len(burst)
    spaced = []
    for _ in range(5):
        spaced.append(new_conversation_id())
        time.sleep(0.002)
    assert spaced == sorted(spaced)
    assert all(1 << 50 < found < 1 << 63 for found in burst + spaced)


def test_a_conversation_created_then_advanced_in_one_step_is_one_insert_at_its_last_version() -> None:
    writes = WriteSet()
    first = writes.save(fresh())
    second = writes.save(dataclasses.replace(first, current_step="add_machine:manufacturer"))
    assert first.id is not None and second.id == first.id
    assert (first.version, second.version) == (1, 2)
    assert writes.conversations == {first.id: ConversationWrite(first.id, second, None)}


def test_a_conversation_created_and_finished_in_one_step_never_reaches_the_store() -> None:
    writes = WriteSet()
    saved = writes.save(fresh())
    assert saved.id is not None
    writes.delete(saved.id, saved.version)
    assert writes.conversations == {}


def test_a_loaded_conversation_saved_twice_is_one_update_checked_against_the_version_loaded() -> None:
    loaded = dataclasses.replace(fresh(), id=41, version=3)
    writes = WriteSet()
    once = writes.save(loaded)
    twice = writes.save(once)
    assert writes.conversations == {41: ConversationWrite(41, twice, 3)} and twice.version == 5
    writes.delete(41, twice.version)
    assert writes.conversations == {41: ConversationWrite(41, None, 3)}


async def test_the_step_sees_its_own_conversation_writes_and_loads_the_chat_once() -> None:
    factory = FakeUnitOfWorkFactory()
    async with factory() as uow:
        stored = await uow.conversations.save(fresh())
        await uow.commit()
    loads = 0
    async with factory() as uow:
        store = uow.conversations
        original = store.of_chat

        async def counting(user_id: int, chat_id: int) -> list[Conversation]:
            nonlocal loads
            loads += 1
            return await original(user_id, chat_id)

        store.of_chat = counting  # type: ignore[method-assign]
        writes = WriteSet()
        view = StepConversations(store, writes, 7, 7)
        assert await view.active() == stored
        await view.delete(stored)
        assert await view.active() is None and await view.find(ADD_MACHINE.name) is None
        again = await view.save(fresh())
        assert await view.active() == again and again.id != stored.id
        assert loads == 1
        assert factory.data.conversations == {stored.id: stored}, "nothing is written while the step decides"


async def test_domain_writes_are_recorded_in_order_and_read_back_within_the_step() -> None:
    factory = FakeUnitOfWorkFactory()
    case = Case(uuid4(), 7, 7, "EB-1A intake", "EB1A", CaseStatus.DRAFT, NOW, NOW, {})
    progress = IntakeProgress(case.case_id, 7, "basics", "full_name", (), {}, NOW, NOW)
    writes = WriteSet()
    async with factory() as uow:
        domains = RecordingDomains(uow.domains, writes, lambda: NOW)
        await domains.cases.add(case)
        await domains.intake.add(progress)
        assert await domains.cases.get(case.case_id) == case
        assert await domains.intake.open_for_user(7) == progress
        done = dataclasses.replace(case, status=CaseStatus.INTAKE_COMPLETE)
        await domains.cases.update(done)
        assert await domains.intake.open_for_user(7) is None, "a completed case's progress is no longer open"
        machine = await domains.machines.add(MachineDraft(7, "Press 9"))
        assert (machine.nickname, machine.created_at) == ("Press 9", NOW)
        assert await uow.machines.count(7) == 0 and factory.data.cases == {}
    assert [(call.store, call.method) for call in writes.domain] == [
        ("cases", "add"),
        ("intake", "add"),
        ("cases", "update"),
        ("machines", "add"),
    ]
    assert writes.domain[0] == DomainWrite("cases", "add", (case,))


async def test_a_decided_step_replays_into_another_store_with_the_same_result() -> None:
    """The dispatcher decides against one store; its write-set, applied to a second store, gives the same rows."""
    dispatcher = Dispatcher(build_registry(), TTL)
    primary, replica = FakeUnitOfWorkFactory(), FakeUnitOfWorkFactory()
    for number, text in enumerate(("/addmachine", "Press 9", "Haas", "/skip", "SN-1", "/skip", "oil weekly"), 1):
        event = Event.message(number, 7, 7, text)
        async with primary() as uow:
            writes = await dispatcher.decide(event, uow, NOW)  # reads only: nothing to commit
        writes.handled = Handled("applied", None, None)
        for target in (primary, replica):
            async with target() as store:
                await apply_writes(writes, event, NOW, store.conversations, store.domains, store.inbox, store.outbox)
                await store.commit()
    assert replica.data.conversations == primary.data.conversations == {}
    assert [m.nickname for m in replica.data.machines] == [m.nickname for m in primary.data.machines] == ["Press 9"]
    assert replica.sent_texts(7) == primary.sent_texts(7)
    assert primary.sent_texts(7)[-1].startswith("Saved “Press 9”")
    assert [r.outcome for r in replica.data.inbox.values()] == ["applied"] * 7

