"""Contract of the ports' tombstone and per-user methods, on the in-memory fakes, real SQLite and real PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import uuid4


from durabot.clock import FakeClock
from durabot.domain.cases import CaseService, CaseStatus, IntakeProgress
from durabot.domain.machines import MachineDraft
from durabot.engine.conversation import Conversation
from durabot.engine.events import Event
from durabot.engine.ports import UnitOfWork, UnitOfWorkFactory
from durabot.flows.add_machine import ADD_MACHINE
from durabot.replies import Reply
from durabot.testing import FakeUnitOfWorkFactory

TTL = timedelta(hours=24)


async def start(uow: UnitOfWork, clock: FakeClock, user_id: int, chat_id: int, flow_name: str = "add_machine") -> None:
    conversation = Conversation.start(ADD_MACHINE, user_id, chat_id, clock(), TTL)
    await uow.conversations.save(replace(conversation, flow_name=flow_name))


class TestTombstones:
    async def test_delete_expired_leaves_a_tombstone_per_expired_conversation(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            await start(uow, clock, 1, 1)
            await start(uow, clock, 1, 1, "eb1a_intake")
            await start(uow, clock, 2, 2)
            clock.advance(hours=1)
            await start(uow, clock, 3, 3)
            await uow.commit()
        expired_at = clock() - timedelta(hours=1) + TTL
        clock.advance(hours=23, minutes=59)
        async with factory() as uow:
            assert await uow.conversations.delete_expired(clock()) == 3
            await uow.commit()
        async with factory() as uow:
            taken = await uow.conversations.take_tombstones(1, 1)
            assert sorted(t.flow_name for t in taken) == ["add_machine", "eb1a_intake"]
            assert {(t.user_id, t.chat_id, t.expired_at, t.created_at) for t in taken} == {(1, 1, expired_at, clock())}
            assert await uow.conversations.take_tombstones(1, 1) == []
            assert await uow.conversations.take_tombstones(3, 3) == [], "a live conversation leaves none"
            await uow.commit()
        async with factory() as uow:
            assert await uow.conversations.take_tombstones(1, 1) == []
            assert [t.user_id for t in await uow.conversations.take_tombstones(2, 2)] == [2]

    async def test_a_second_expiry_of_the_same_conversation_replaces_its_tombstone(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        for _ in range(2):
            async with factory() as uow:
                await start(uow, clock, 1, 1)
                clock.advance(hours=25)
                assert await uow.conversations.delete_expired(clock()) == 1
                await uow.commit()
        async with factory() as uow:
            [tombstone] = await uow.conversations.take_tombstones(1, 1)
            assert tombstone.created_at == clock()

    async def test_tombstones_taken_in_a_rolled_back_step_are_still_there(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            await start(uow, clock, 1, 1)
            clock.advance(hours=25)
            await uow.conversations.delete_expired(clock())
            await uow.commit()
        async with factory() as uow:
            assert len(await uow.conversations.take_tombstones(1, 1)) == 1
            await uow.rollback()
        async with factory() as uow:
            assert len(await uow.conversations.take_tombstones(1, 1)) == 1

    async def test_prune_removes_only_tombstones_left_before_the_cut(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            await start(uow, clock, 1, 1)
            await uow.commit()
        clock.advance(hours=25)
        async with factory() as uow:
            await uow.conversations.delete_expired(clock())
            await start(uow, clock, 2, 2)
            await uow.commit()
        clock.advance(hours=25)
        async with factory() as uow:
            await uow.conversations.delete_expired(clock())
            assert await uow.conversations.prune_tombstones(clock() - timedelta(hours=1)) == 1
            await uow.commit()
        async with factory() as uow:
            assert await uow.conversations.take_tombstones(1, 1) == []
            assert len(await uow.conversations.take_tombstones(2, 2)) == 1

    async def test_many_expired_conversations_are_tombstoned_in_batches(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            for user_id in range(1, 1202):
                await start(uow, clock, user_id, user_id)
            await uow.commit()
        clock.advance(hours=25)
        async with factory() as uow:
            assert await uow.conversations.delete_expired(clock()) == 1201
            await uow.commit()
        async with factory() as uow:
            assert len(await uow.conversations.take_tombstones(1201, 1201)) == 1


class TestUserData:
    async def test_of_user_and_forget_user_cover_every_chat_of_the_user_only(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            await start(uow, clock, 1, -5)
            await uow.conversations.delete_expired(clock() + TTL)
            await start(uow, clock, 1, 1)
            await start(uow, clock, 1, -5, "eb1a_intake")
            await start(uow, clock, 2, 2)
            await uow.commit()
        async with factory() as uow:
            live, gone = await uow.conversations.of_user(1)
            assert sorted((c.chat_id, c.flow_name) for c in live) == [(-5, "eb1a_intake"), (1, "add_machine")]
            assert [(t.chat_id, t.flow_name) for t in gone] == [(-5, "add_machine")]
            assert await uow.conversations.forget_user(1) == 2
            await uow.commit()
        async with factory() as uow:
            assert await uow.conversations.of_user(1) == ([], [])
            assert [c.user_id for c in (await uow.conversations.of_user(2))[0]] == [2]

    async def test_user_records_forget_the_users_conversations_updates_and_private_replies_only(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            await start(uow, clock, 1, 1)
            await start(uow, clock, 1, -5)
            await start(uow, clock, 2, 2)
            await uow.inbox.add([Event.message(1, 1, 1, "mine"), Event.message(2, 2, 2, "theirs")], clock())
            for chat_id in (1, 2):
                handled = await uow.inbox.next_pending(chat_id)
                assert handled is not None
                await uow.inbox.mark_done(handled.inbox_id, "applied", clock())
            await uow.outbox.add(1, [Reply("to the private chat")], None, clock())
            await uow.outbox.add(-5, [Reply("to the group")], None, clock())
            await uow.commit()
        async with factory() as uow:
            records = uow.domains.user_records
            assert len((await records.of_user(1))[0]) == 2
            assert await records.forget_user(1) == 2
            await uow.commit()
        async with factory() as uow:
            assert await uow.domains.user_records.of_user(1) == ([], [])
            assert len((await uow.domains.user_records.of_user(2))[0]) == 1
            assert await uow.inbox.forget_user(1) == 0, "their handled update's content is already gone"
            assert await uow.inbox.forget_user(2) == 1
            assert await uow.outbox.forget_chat(1) == 0
            assert await uow.outbox.forget_chat(-5) == 1, "a group's replies stay"

    async def test_machines_forget_user(self, factory: UnitOfWorkFactory) -> None:
        async with factory() as uow:
            await uow.domains.machines.add(MachineDraft(1, "Press 3"))
            await uow.domains.machines.add(MachineDraft(1, "Press 4"))
            await uow.domains.machines.add(MachineDraft(2, "Press 3"))
            assert await uow.domains.machines.forget_user(1) == 2
            await uow.commit()
        async with factory() as uow:
            assert await uow.domains.machines.count(1) == 0
            assert await uow.domains.machines.count(2) == 1

    async def test_deleting_unfinished_cases_keeps_completed_ones_with_their_progress(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            cases = CaseService(uow.domains.cases)
            made = {}
            for status in CaseStatus:
                case = await cases.create(1, 1, clock())
                await cases.change_status(case.case_id, status, clock())
                await uow.domains.intake.add(IntakeProgress(case.case_id, 1, "basic", "email", (), {}, clock(), clock()))
                made[status] = case.case_id
            other = await cases.create(2, 2, clock())
            await uow.domains.intake.add(IntakeProgress(other.case_id, 2, "basic", "email", (), {}, clock(), clock()))
            deleted, kept = await cases.delete_unfinished(1, uow.domains.intake)
            assert deleted == 2
            assert [case.status for case in kept] == [CaseStatus.INTAKE_COMPLETE]
            await uow.commit()
        async with factory() as uow:
            assert [case.case_id for case in await uow.domains.cases.for_user(1)] == [made[CaseStatus.INTAKE_COMPLETE]]
            assert [p.case_id for p in await uow.domains.intake.for_user(1)] == [made[CaseStatus.INTAKE_COMPLETE]]
            assert [p.case_id for p in await uow.domains.intake.for_user(2)] == [other.case_id]

    async def test_forget_chat_removes_the_chats_messages_whatever_their_state(
        self, factory: UnitOfWorkFactory, clock: FakeClock
    ) -> None:
        async with factory() as uow:
            await uow.outbox.add(1, [Reply("a"), Reply("b")], None, clock())
            await uow.outbox.add(2, [Reply("c")], None, clock())
            assert await uow.outbox.forget_chat(1) == 2
            await uow.outbox.add(1, [Reply("after")], None, clock())
            assert await uow.outbox.forget_chat(3) == 0
            await uow.commit()
        async with factory() as uow:
            assert await uow.outbox.forget_chat(1) == 1, "only what was queued after it is left"
            assert await uow.outbox.forget_chat(2) == 1


async def test_progress_without_its_case_is_deleted_too(clock: FakeClock) -> None:
    factory = FakeUnitOfWorkFactory(clock, enforce_foreign_key=False)
    async with factory() as uow:
        orphan = IntakeProgress(uuid4(), 1, "basic", "email", (), {}, clock(), clock())
        await uow.domains.intake.add(orphan)
        assert await CaseService(uow.domains.cases).delete_unfinished(1, uow.domains.intake) == (0, [])
        assert await uow.domains.intake.for_user(1) == []
