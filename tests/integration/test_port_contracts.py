"""One contract suite per storage port, run on the in-memory fakes, real SQLite and real PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from durabot.clock import FakeClock
from durabot.domain.cases import CaseNotFoundError, CaseService, CaseStatus, IntakeProgress
from durabot.domain.machines import MachineDraft
from durabot.engine.conversation import Conversation
from durabot.engine.events import Event, IgnoredUpdate
from durabot.engine.ports import StaleConversationError, UnitOfWorkFactory
from durabot.flows.add_machine import ADD_MACHINE

TTL = timedelta(hours=24)


def fresh(clock: FakeClock, user_id: int = 1, chat_id: int = 1) -> Conversation:
    return Conversation.start(ADD_MACHINE, user_id, chat_id, clock(), TTL)


class TestConversationStore:
    async def test_save_assigns_an_id_and_counts_versions(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            first = await uow.conversations.save(fresh(clock))
            second = await uow.conversations.save(first.advanced(ADD_MACHINE, first.answers.with_answer("nickname", "A"), clock(), TTL))
            await uow.commit()
        assert first.id is not None and (first.version, second.version) == (1, 2)
        async with factory() as uow:
            loaded = await uow.conversations.find(1, 1, "add_machine")
        assert loaded is not None
        assert (loaded.id, loaded.version, dict(loaded.answers.values)) == (first.id, 2, {"nickname": "A"})
        assert loaded.current_step == "add_machine:manufacturer"
        assert loaded.expires_at == clock() + TTL

    async def test_saving_a_stale_version_is_refused(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            saved = await uow.conversations.save(fresh(clock))
            await uow.conversations.save(saved)
            await uow.commit()
        async with factory() as uow:
            with pytest.raises(StaleConversationError):
                await uow.conversations.save(saved)

    async def test_active_is_the_most_recently_touched(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            older = await uow.conversations.save(fresh(clock))
            clock.advance(minutes=1)
            newer = await uow.conversations.save(replace(fresh(clock), flow_name="other"))
            await uow.conversations.save(fresh(clock, chat_id=2))
            await uow.commit()
        async with factory() as uow:
            active = await uow.conversations.active(1, 1)
            assert active is not None and active.id == newer.id
            clock.advance(minutes=1)
            await uow.conversations.save(replace(older, updated_at=clock()))
            active = await uow.conversations.active(1, 1)
            assert active is not None and active.id == older.id
            assert await uow.conversations.active(1, 3) is None

    async def test_delete_and_delete_expired(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            gone = await uow.conversations.save(fresh(clock, chat_id=1))
            await uow.conversations.save(fresh(clock, chat_id=2))
            clock.advance(hours=1)
            await uow.conversations.save(fresh(clock, chat_id=3))
            assert gone.id is not None
            await uow.conversations.delete(gone.id)
            await uow.commit()
        clock.advance(hours=23, seconds=1)
        async with factory() as uow:
            assert await uow.conversations.delete_expired(clock()) == 1
            await uow.commit()
        async with factory() as uow:
            assert [await uow.conversations.active(1, chat) is not None for chat in (1, 2, 3)] == [False, False, True]


class TestMachineRepository:
    async def test_add_find_count_and_page(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            for number in range(1, 6):
                clock.advance(seconds=1)
                await uow.domains.machines.add(MachineDraft(user_id=7, nickname=f"Pump {number}", manufacturer="KSB"))
            await uow.domains.machines.add(MachineDraft(user_id=8, nickname="Pump 1"))
            await uow.commit()
        async with factory() as uow:
            found = await uow.domains.machines.find_by_nickname(7, "  pump   3 ")
            assert found is not None and (found.nickname, found.manufacturer) == ("Pump 3", "KSB")
            assert await uow.domains.machines.find_by_nickname(7, "Pump 9") is None
            assert (await uow.domains.machines.count(7), await uow.domains.machines.count(8), await uow.domains.machines.count(9)) == (5, 1, 0)
            page = await uow.domains.machines.newest_first(7, 1, 2)
            assert [m.nickname for m in page] == ["Pump 4", "Pump 3"]


def raw_message(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    return {"update_id": update_id, "message": {"message_id": 1, "chat": {"id": chat_id}, "text": text}}


class TestInbox:
    async def test_add_ignores_updates_already_seen(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        events = [Event.message(5, 1, 1, "a"), Event.message(6, 1, 1, "b")]
        async with factory() as uow:
            assert await uow.inbox.add(events, clock()) == 2
            assert await uow.inbox.add([*events, Event.message(7, 2, 2, "c")], clock()) == 1
            await uow.commit()

    async def test_a_redelivery_with_the_same_content_is_not_stored_again(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        raw = {5: raw_message(5, 1, "a")}
        async with factory() as uow:
            assert await uow.inbox.add([Event.message(5, 1, 1, "a")], clock(), raw) == 1
            assert await uow.inbox.add([Event.message(5, 1, 1, "a")], clock(), raw) == 0
            await uow.commit()

    async def test_a_different_update_under_a_known_id_is_new(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            await uow.inbox.add([Event.message(5, 1, 1, "first")], clock(), {5: raw_message(5, 1, "first")})
            first = await uow.inbox.next_pending(1)
            assert first is not None
            await uow.inbox.mark_done(first.inbox_id, "applied", clock())
            reused = {5: raw_message(5, 1, "after a restart")}
            assert await uow.inbox.add([Event.message(5, 1, 1, "after a restart")], clock(), reused) == 1
            await uow.commit()
        async with factory() as uow:
            again = await uow.inbox.next_pending(1)
            assert again is not None and again.event == Event.message(5, 1, 1, "after a restart")

    async def test_the_same_update_id_of_another_bot_is_new(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        ours, theirs = Event.message(5, 1, 1, "a"), replace(Event.message(5, 1, 1, "a"), bot_id=99)
        async with factory() as uow:
            assert await uow.inbox.add([ours], clock()) == 1
            assert await uow.inbox.add([theirs], clock()) == 1

    async def test_ignored_updates_are_stored_done_with_their_reason(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            assert await uow.inbox.add([IgnoredUpdate(8, "message without chat")], clock()) == 1
            assert await uow.inbox.add([IgnoredUpdate(8, "message without chat")], clock()) == 0
            assert await uow.inbox.chats_with_pending() == []

    async def test_pending_updates_come_lowest_id_first_per_chat(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            await uow.inbox.add([Event.message(9, 1, 1, "late"), Event.message(3, 2, 2, "x")], clock())
            await uow.inbox.add([Event.message(4, 1, 1, "early")], clock())
            await uow.commit()
        async with factory() as uow:
            first = await uow.inbox.next_pending(1)
            assert first is not None and first.event == Event.message(4, 1, 1, "early")
            assert sorted(await uow.inbox.chats_with_pending()) == [1, 2]
            await uow.inbox.mark_done(first.inbox_id, "applied", clock())
            await uow.commit()
        async with factory() as uow:
            after = await uow.inbox.next_pending(1)
            assert after is not None and after.event == Event.message(9, 1, 1, "late")
            assert await uow.inbox.next_pending(3) is None

    async def test_text_unstorable_on_postgresql_is_replaced(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        event = Event.message(6, 1, 1, "nul\x00 and lone \ud800")
        async with factory() as uow:
            await uow.inbox.add([event], clock(), {6: raw_message(6, 1, "nul\x00 and lone \ud800")})
            await uow.commit()
        async with factory() as uow:
            pending = await uow.inbox.next_pending(1)
            assert pending is not None and pending.event.text == "nul\ufffd and lone \ufffd"

    async def test_prune_forgets_only_old_applied_updates(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            await uow.inbox.add([Event.message(1, 1, 1, "a"), Event.message(2, 1, 1, "b")], clock())
            first = await uow.inbox.next_pending(1)
            assert first is not None
            await uow.inbox.mark_done(first.inbox_id, "applied", clock())
            clock.advance(days=8)
            assert await uow.inbox.prune(clock() - timedelta(days=7)) == 1
            assert await uow.inbox.add([Event.message(2, 1, 1, "b")], clock()) == 0
            second = await uow.inbox.next_pending(1)
            assert second is not None and second.event == Event.message(2, 1, 1, "b")

    async def test_redact_drops_old_content_but_keeps_the_identity(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        raw = {1: raw_message(1, 1, "my phone is 555-0100")}
        async with factory() as uow:
            await uow.inbox.add([Event.message(1, 1, 1, "my phone is 555-0100")], clock(), raw)
            first = await uow.inbox.next_pending(1)
            assert first is not None
            await uow.inbox.mark_done(first.inbox_id, "applied", clock())
            clock.advance(days=3)
            assert await uow.inbox.redact(clock() - timedelta(days=2)) == 1
            assert await uow.inbox.redact(clock() - timedelta(days=2)) == 0
            assert await uow.inbox.add([Event.message(1, 1, 1, "my phone is 555-0100")], clock(), raw) == 0

    async def test_forget_user_drops_the_content_of_their_handled_updates_only(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            await uow.inbox.add([Event.message(1, 1, 1, "mine"), Event.message(2, 2, 2, "theirs")], clock())
            await uow.inbox.add([IgnoredUpdate(3, "not acted on: edited_message", user_id=1, chat_id=1)], clock())
            handled = await uow.inbox.next_pending(1)
            assert handled is not None
            await uow.inbox.mark_done(handled.inbox_id, "applied", clock())
            await uow.inbox.add([Event.message(4, 1, 1, "still pending")], clock())
            assert await uow.inbox.forget_user(1) == 2
            assert await uow.inbox.forget_user(1) == 0
            pending = await uow.inbox.next_pending(1)
            assert pending is not None and pending.event.text == "still pending"


class TestUnitOfWork:
    async def test_nothing_is_kept_without_commit(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            await uow.domains.machines.add(MachineDraft(user_id=1, nickname="Ghost"))
            await uow.conversations.save(fresh(clock))
            await uow.inbox.add([Event.message(1, 1, 1, "x")], clock())
        async with factory() as uow:
            assert await uow.domains.machines.count(1) == 0
            assert await uow.conversations.active(1, 1) is None
            assert await uow.inbox.next_pending(1) is None

    async def test_rollback_discards_and_the_unit_stays_usable(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            await uow.domains.machines.add(MachineDraft(user_id=1, nickname="Ghost"))
            await uow.rollback()
            await uow.domains.machines.add(MachineDraft(user_id=1, nickname="Real"))
            await uow.commit()
        async with factory() as uow:
            assert await uow.domains.machines.count(1) == 1
            assert await uow.domains.machines.find_by_nickname(1, "real") is not None


class TestCasesAndIntakeProgress:
    async def test_cases_are_stored_listed_and_updated(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            service = CaseService(uow.domains.cases)
            first = await service.create(5, 5, clock())
            clock.advance(minutes=1)
            second = await service.create(5, 5, clock(), title="Second")
            await service.create(6, 6, clock())
            await uow.commit()
        async with factory() as uow:
            service = CaseService(uow.domains.cases)
            assert [case.case_id for case in await service.list_for_user(5)] == [second.case_id, first.case_id]
            changed = await service.change_status(first.case_id, CaseStatus.CANCELLED, clock())
            await uow.commit()
        async with factory() as uow:
            stored = await CaseService(uow.domains.cases).get(first.case_id)
            assert (stored.status, stored.title, stored.client_id) == (CaseStatus.CANCELLED, "Intake Session", 5)
            assert stored == changed
            with pytest.raises(CaseNotFoundError):
                await CaseService(uow.domains.cases).get(uuid4())

    async def test_progress_needs_its_case(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            with pytest.raises(Exception, match="(?i)foreign key"):
                await uow.domains.intake.add(progress_of(uuid4(), 5, clock))

    async def test_the_open_intake_is_the_newest_draft(self, factory: UnitOfWorkFactory, clock: FakeClock) -> None:
        async with factory() as uow:
            service = CaseService(uow.domains.cases)
            done = await service.create(5, 5, clock())
            await uow.domains.intake.add(progress_of(done.case_id, 5, clock))
            await service.change_status(done.case_id, CaseStatus.INTAKE_COMPLETE, clock())
            assert await uow.domains.intake.open_for_user(5) is None
            clock.advance(minutes=1)
            draft = await service.create(5, 5, clock())
            await uow.domains.intake.add(progress_of(draft.case_id, 5, clock))
            await uow.commit()
        async with factory() as uow:
            found = await uow.domains.intake.open_for_user(5)
            assert found is not None and found.case_id == draft.case_id
            moved = replace(found, current_block="field", completed_blocks=("basic",), answers={"answers": {"a": 1}})
            await uow.domains.intake.update(moved)
            await uow.commit()
        async with factory() as uow:
            stored = await uow.domains.intake.get(draft.case_id)
            assert stored is not None
            assert (stored.current_block, stored.completed_blocks, dict(stored.answers)) == (
                "field", ("basic",), {"answers": {"a": 1}},
            )
            assert await uow.domains.intake.orphans() == []


def progress_of(case_id: UUID, user_id: int, clock: FakeClock) -> IntakeProgress:
    return IntakeProgress(case_id, user_id, "basic", "full_name", (), {"answers": {}, "order": []}, clock(), clock())
