"""Write-through on a real SQLite journal: what the mirror copies from committed primary steps, and what it survives."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from durabot.domain.cases import Case, CaseStatus, IntakeProgress
from durabot.domain.machines import Machine, MachineDraft
from durabot.engine.conversation import Conversation, Tombstone
from durabot.engine.writes import ConversationWrite, DomainWrite, WriteSet
from durabot.flows.model import Answers
from durabot.journal import mirror as mirror_module
from durabot.journal.mirror import Mirror
from durabot.journal.store import Journal

NOW = datetime(2026, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
LATER = NOW + timedelta(days=2)
"""Past the expiry of every conversation these tests write."""
USER = 4201
CHAT = 4201


@dataclass
class Rig:
    journal: Journal
    mirror: Mirror

    def write(self, *write_sets: WriteSet) -> None:
        """Submit ``write_sets`` as committed primary steps and wait until they are in the journal."""
        for writes in write_sets:
            self.mirror.submit(writes, NOW)
        assert self.mirror.flush(), "the mirror did not finish writing in time"

    async def conversations(self, user_id: int = USER, chat_id: int = CHAT) -> list[Conversation]:
        async with self.journal() as uow:
            return await uow.conversations.of_chat(user_id, chat_id)

    async def tombstones(self, user_id: int = USER, chat_id: int = CHAT) -> list[Tombstone]:
        async with self.journal() as uow:
            return await uow.conversations.tombstones(user_id, chat_id)

    async def case(self, case_id: UUID) -> Case | None:
        async with self.journal() as uow:
            return await uow.domains.cases.get(case_id)

    async def progress(self, case_id: UUID) -> IntakeProgress | None:
        async with self.journal() as uow:
            return await uow.domains.intake.get(case_id)

    async def machine(self, nickname: str, user_id: int = USER) -> Machine | None:
        async with self.journal() as uow:
            return await uow.domains.machines.find_by_nickname(user_id, nickname)

    async def machine_count(self, user_id: int = USER) -> int:
        async with self.journal() as uow:
            return await uow.domains.machines.count(user_id)


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    journal = Journal(tmp_path / "j.sqlite3")
    await journal.open("test-primary")
    try:
        yield journal
    finally:
        await journal.close()


@pytest.fixture
def rig(journal: Journal) -> Iterator[Rig]:
    mirror = Mirror(journal.path)
    mirror.start()
    try:
        yield Rig(journal, mirror)
    finally:
        mirror.stop()


def conversation(
    conversation_id: int = 8_000_001, version: int = 1, flow_name: str = "add_machine", **answers: Any
) -> Conversation:
    values = answers or {"nickname": "Press 12", "dimensions": {"width": 120, "units": ["cm"]}}
    return Conversation(
        user_id=USER,
        chat_id=CHAT,
        flow_name=flow_name,
        flow_version=2,
        answers=Answers(values, tuple(values)),
        started_at=NOW - timedelta(minutes=10),
        updated_at=NOW + timedelta(seconds=version),
        expires_at=NOW + timedelta(hours=24),
        version=version,
        id=conversation_id,
        current_step=f"{flow_name}:step{version}",
    )


def saved(new: Conversation, expected_version: int | None) -> WriteSet:
    assert new.id is not None
    return WriteSet(conversations={new.id: ConversationWrite(new.id, new, expected_version)})


def deleted(conversation_id: int, expected_version: int) -> WriteSet:
    return WriteSet(conversations={conversation_id: ConversationWrite(conversation_id, None, expected_version)})


def domain(store: Any, method: str, *args: Any) -> WriteSet:
    return WriteSet(domain=[DomainWrite(store, method, args)])


def case(case_id: UUID | None = None, status: CaseStatus = CaseStatus.DRAFT, **changes: Any) -> Case:
    made = Case(
        case_id=case_id or uuid4(),
        user_id=USER,
        client_id=USER,
        title="Intake Session",
        case_type="EB1A",
        status=status,
        created_at=NOW - timedelta(days=1),
        updated_at=NOW,
        data={"source": "bot"},
    )
    return dataclasses.replace(made, **changes)


def progress(case_id: UUID, **changes: Any) -> IntakeProgress:
    made = IntakeProgress(
        case_id=case_id,
        user_id=USER,
        current_block="education",
        current_step="eb1a:degree",
        completed_blocks=("personal",),
        answers={"full_name": "Ada Lovelace", "degrees": [{"name": "BSc"}]},
        created_at=NOW - timedelta(days=1),
        updated_at=NOW,
    )
    return dataclasses.replace(made, **changes)


@contextmanager
def journal_write_locked(path: Path) -> Iterator[None]:
    """Hold the journal file's write lock from another connection, so the mirror's thread waits for it."""
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        yield
        blocker.execute("ROLLBACK")
    finally:
        blocker.close()


async def test_a_conversation_inserted_then_updated_is_stored_whole_with_its_id_and_version(rig: Rig) -> None:
    first = conversation(version=1)
    second = conversation(version=2, nickname="Press 12", manufacturer="Haas")
    rig.write(saved(first, None))
    assert await rig.conversations() == [first]
    rig.write(saved(second, 1))
    assert await rig.conversations() == [second]
    assert rig.mirror.failures == 0


async def test_an_update_of_a_conversation_the_journal_never_had_is_stored_whole(rig: Rig) -> None:
    later = conversation(version=7)
    rig.write(saved(later, 6))
    assert await rig.conversations() == [later]


async def test_a_new_conversation_of_the_same_user_chat_and_flow_replaces_the_old_row(rig: Rig) -> None:
    old = conversation(conversation_id=8_000_001, version=3)
    new = conversation(conversation_id=8_000_099, version=1, nickname="Lathe")
    rig.write(saved(old, 2), saved(new, None))
    assert await rig.conversations() == [new]
    assert rig.mirror.failures == 0, "the unique (user, chat, flow) row was not cleared first"


async def test_a_conversation_of_another_flow_in_the_same_chat_is_kept_beside_it(rig: Rig) -> None:
    machine = conversation(conversation_id=8_000_001, flow_name="add_machine")
    intake = conversation(conversation_id=8_000_002, flow_name="eb1a_intake", full_name="Ada")
    rig.write(saved(machine, None), saved(intake, None))
    assert sorted(found.id or 0 for found in await rig.conversations()) == [8_000_001, 8_000_002]


async def test_a_deleted_conversation_is_removed_from_the_journal(rig: Rig) -> None:
    kept = conversation(conversation_id=8_000_002, flow_name="eb1a_intake")
    rig.write(saved(conversation(conversation_id=8_000_001), None), saved(kept, None))
    rig.write(deleted(8_000_001, 1))
    assert await rig.conversations() == [kept]


async def leave_tombstones(journal: Journal) -> None:
    """Run the journal's own expiry cleanup at a time past every test conversation's expiry."""
    async with journal() as uow:
        await uow.conversations.delete_expired(LATER)
        await uow.commit()


async def test_tombstones_taken_are_removed_and_other_chats_tombstones_kept(rig: Rig) -> None:
    here = conversation(conversation_id=8_000_001)
    elsewhere = dataclasses.replace(here, id=8_000_002, chat_id=-100777)
    rig.write(saved(here, None), saved(elsewhere, None))
    await leave_tombstones(rig.journal)
    assert [tombstone.flow_name for tombstone in await rig.tombstones()] == ["add_machine"]
    rig.write(WriteSet(tombstones_taken=[(USER, CHAT)]))
    assert await rig.tombstones() == []
    assert len(await rig.tombstones(USER, -100777)) == 1


async def test_a_case_added_then_updated_is_upserted(rig: Rig) -> None:
    added = case()
    updated = case(
        added.case_id, CaseStatus.INTAKE_COMPLETE, title="Intake done", data={"score": 9}, updated_at=LATER
    )
    rig.write(domain("cases", "add", added))
    assert await rig.case(added.case_id) == added
    rig.write(domain("cases", "update", updated))
    stored = await rig.case(added.case_id)
    assert stored == updated
    assert stored is not None and stored.status is CaseStatus.INTAKE_COMPLETE
    assert rig.mirror.failures == 0


async def test_a_case_the_journal_lacks_is_stored_by_its_update(rig: Rig) -> None:
    updated = case(status=CaseStatus.CANCELLED)
    rig.write(domain("cases", "update", updated))
    assert await rig.case(updated.case_id) == updated


async def test_updating_a_case_keeps_its_intake_progress(rig: Rig) -> None:
    added = case()
    rig.write(domain("cases", "add", added), domain("intake", "add", progress(added.case_id)))
    rig.write(domain("cases", "update", case(added.case_id, title="Renamed")))
    assert await rig.progress(added.case_id) == progress(added.case_id)


async def test_a_deleted_case_is_removed_with_its_intake_progress(rig: Rig) -> None:
    added, other = case(), case()
    rig.write(
        domain("cases", "add", added),
        domain("cases", "add", other),
        domain("intake", "add", progress(added.case_id)),
    )
    rig.write(domain("cases", "delete", added.case_id))
    assert await rig.case(added.case_id) is None
    assert await rig.progress(added.case_id) is None
    assert await rig.case(other.case_id) == other


async def test_intake_progress_with_its_case_is_stored_and_updated(rig: Rig) -> None:
    added = case()
    later = progress(added.case_id, current_block="evidence", completed_blocks=("personal", "education"))
    rig.write(domain("cases", "add", added), domain("intake", "add", progress(added.case_id)))
    assert await rig.progress(added.case_id) == progress(added.case_id)
    rig.write(domain("intake", "update", later))
    stored = await rig.progress(added.case_id)
    assert stored == later
    assert stored is not None and stored.completed_blocks == ("personal", "education")


async def test_intake_progress_for_a_case_the_journal_lacks_is_skipped_and_the_rest_is_written(rig: Rig) -> None:
    missing, present = uuid4(), case()
    orphan_step = WriteSet(
        conversations=saved(conversation(), None).conversations,
        domain=[
            DomainWrite("intake", "update", (progress(missing),)),
            DomainWrite("cases", "add", (present,)),
        ],
    )
    rig.write(orphan_step, domain("intake", "add", progress(present.case_id)))
    assert await rig.progress(missing) is None
    assert await rig.case(missing) is None
    assert await rig.conversations() == [conversation()]
    assert await rig.case(present.case_id) == present
    assert await rig.progress(present.case_id) == progress(present.case_id)
    assert rig.mirror.failures == 0


async def test_intake_progress_deleted_is_removed_and_its_case_kept(rig: Rig) -> None:
    added = case()
    rig.write(domain("cases", "add", added), domain("intake", "add", progress(added.case_id)))
    rig.write(domain("intake", "delete", added.case_id))
    assert await rig.progress(added.case_id) is None
    assert await rig.case(added.case_id) == added


async def test_a_machine_is_stored_with_the_step_time(rig: Rig) -> None:
    rig.write(domain("machines", "add", MachineDraft(USER, "Press 12", "Haas", "VF-2", "SN-77", "Bay 4", "oiled")))
    stored = await rig.machine("press 12")
    assert stored is not None
    assert (stored.nickname, stored.manufacturer, stored.model_number, stored.serial_number) == (
        "Press 12", "Haas", "VF-2", "SN-77"
    )
    assert (stored.location, stored.notes, stored.created_at) == ("Bay 4", "oiled", NOW)


async def test_a_machine_added_twice_with_the_same_nickname_is_kept_once(rig: Rig) -> None:
    rig.write(
        domain("machines", "add", MachineDraft(USER, "Press 12", "Haas")),
        domain("machines", "add", MachineDraft(USER, "Press 12", "Haas")),
        domain("machines", "add", MachineDraft(USER, "PRESS 12", "Okuma")),
    )
    assert await rig.machine_count() == 1
    stored = await rig.machine("Press 12")
    assert stored is not None and stored.manufacturer == "Haas"
    assert rig.mirror.failures == 0


async def test_the_same_nickname_for_another_user_is_a_machine_of_its_own(rig: Rig) -> None:
    rig.write(
        domain("machines", "add", MachineDraft(USER, "Press 12")),
        domain("machines", "add", MachineDraft(USER + 1, "Press 12")),
    )
    assert (await rig.machine_count(USER), await rig.machine_count(USER + 1)) == (1, 1)


async def test_forgetting_a_users_machines_removes_only_theirs(rig: Rig) -> None:
    rig.write(
        domain("machines", "add", MachineDraft(USER, "Press 12")),
        domain("machines", "add", MachineDraft(USER, "Lathe 3")),
        domain("machines", "add", MachineDraft(USER + 1, "Mill")),
    )
    rig.write(domain("machines", "forget_user", USER))
    assert await rig.machine_count(USER) == 0
    assert await rig.machine_count(USER + 1) == 1


async def test_forgetting_a_users_records_removes_their_conversations_and_tombstones(rig: Rig) -> None:
    rig.write(saved(conversation(conversation_id=8_000_001), None))
    await leave_tombstones(rig.journal)
    live = conversation(conversation_id=8_000_002, flow_name="eb1a_intake")
    other_user = dataclasses.replace(conversation(conversation_id=8_000_003), user_id=USER + 1)
    rig.write(saved(live, None), saved(other_user, None))
    assert len(await rig.tombstones()) == 1
    rig.write(domain("user_records", "forget_user", USER))
    assert await rig.conversations() == []
    assert await rig.tombstones() == []
    assert await rig.conversations(USER + 1, CHAT) == [other_user]


async def test_an_unknown_domain_call_is_skipped_without_failing(rig: Rig) -> None:
    rig.write(WriteSet(domain=[DomainWrite("machines", "rename", ("x",))]), saved(conversation(), None))
    assert rig.mirror.failures == 0
    assert await rig.conversations() == [conversation()]


async def test_a_write_set_that_cannot_be_written_is_counted_and_the_rest_of_its_batch_is_written(rig: Rig) -> None:
    stored = conversation(conversation_id=8_000_001, version=1)
    rig.write(saved(stored, None))
    good_before = domain("cases", "add", case())
    unwritable = WriteSet(
        conversations=saved(conversation(conversation_id=8_000_001, version=2, nickname=object()), 1).conversations,
        tombstones_taken=[(USER, CHAT)],
    )
    good_after = domain("machines", "add", MachineDraft(USER, "Press 12"))
    with journal_write_locked(rig.journal.path):  # the three are queued while the mirror waits: one batch
        for writes in (good_before, unwritable, good_after):
            rig.mirror.submit(writes, NOW)
        assert not rig.mirror.flush(timeout=0.05), "the mirror wrote while the journal was locked"
    assert rig.mirror.flush()
    assert rig.mirror.failures == 1
    (before_case,) = good_before.domain[0].args
    assert await rig.case(before_case.case_id) == before_case
    assert await rig.machine_count() == 1
    assert await rig.conversations() == [stored], "the failed write-set's delete of the old row was not undone"


async def test_conversations_expired_by_the_steps_time_are_dropped_from_the_copy(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mirror_module, "PRUNE_EVERY_SECONDS", 0.0)
    mirror = Mirror(journal.path)
    mirror.start()
    try:
        expired = dataclasses.replace(conversation(conversation_id=8_000_001), expires_at=NOW - timedelta(seconds=1))
        live = conversation(conversation_id=8_000_002, flow_name="eb1a_intake")
        mirror.submit(saved(expired, None), NOW)
        mirror.submit(saved(live, None), NOW)
        assert mirror.flush()
    finally:
        mirror.stop()
    assert mirror.failures == 0
    async with journal() as uow:
        assert await uow.conversations.of_chat(USER, CHAT) == [live]
        assert await uow.conversations.tombstones(USER, CHAT) == []


async def test_submit_before_start_is_a_no_op(journal: Journal) -> None:
    mirror = Mirror(journal.path)
    try:
        mirror.submit(saved(conversation(), None), NOW)
        assert mirror.flush(), "flush before start waits for nothing"
        mirror.start()
        assert mirror.flush()
    finally:
        mirror.stop()
    assert mirror.failures == 0
    async with journal() as uow:
        assert await uow.conversations.of_chat(USER, CHAT) == []


async def test_stop_writes_what_was_submitted_before_it(journal: Journal) -> None:
    mirror = Mirror(journal.path)
    mirror.start()
    for number in range(1, 21):
        mirror.submit(domain("machines", "add", MachineDraft(USER, f"Machine {number}")), NOW)
    mirror.stop()
    async with journal() as uow:
        assert await uow.domains.machines.count(USER) == 20


async def test_submit_after_stop_is_a_no_op(journal: Journal) -> None:
    mirror = Mirror(journal.path)
    mirror.start()
    mirror.stop()
    mirror.submit(saved(conversation(), None), NOW)
    assert mirror.flush()
    async with journal() as uow:
        assert await uow.conversations.of_chat(USER, CHAT) == []
