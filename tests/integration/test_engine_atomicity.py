"""One step, one transaction: a failure anywhere in a step leaves no partial rows, on both databases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Self

from durabot.bootstrap import build_registry
from durabot.clock import FakeClock
from durabot.domain.machines import MachineRepository
from durabot.engine.ports import Outbox
from durabot.engine.runner import APOLOGY, FAILED, Engine
from durabot.replies import Outgoing, Reply
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWork, SqlAlchemyUnitOfWorkFactory
from durabot.storage.tables import ConversationStateRow, OutboxMessageRow, TelegramUpdateRow, UserMachineRow
from tests.conftest import ScratchDatabase
from tests.integration.conftest import Chat, Harness


class InjectedFailure(RuntimeError):
    """The fault a test injects."""


class OutboxFailingOnSave:
    """An outbox that, given the "Saved" reply, checks the machine's row is already written, then fails.

    A step's replies are written after its domain writes, in the same transaction: this is a
    fault after the machine's INSERT has reached the database and before the commit.
    """

    def __init__(self, inner: Outbox, machines: MachineRepository) -> None:
        self._inner = inner
        self._machines = machines

    async def add(self, chat_id: int, messages: Sequence[Outgoing], update_id: int | None, now: datetime) -> None:
        if any(isinstance(message, Reply) and message.text.startswith("Saved") for message in messages):
            assert await self._machines.count(chat_id) == 1, "the insert must have happened inside the transaction"
            raise InjectedFailure("disk on fire")
        await self._inner.add(chat_id, messages, update_id, now)

    async def prune_sent(self, sent_before: datetime) -> int:
        return await self._inner.prune_sent(sent_before)

    async def forget_chat(self, chat_id: int) -> int:
        return await self._inner.forget_chat(chat_id)


class FailingOnSaveUnitOfWork(SqlAlchemyUnitOfWork):
    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.outbox = OutboxFailingOnSave(self.outbox, self.machines)
        return self


class FailingOnSaveFactory(SqlAlchemyUnitOfWorkFactory):
    def __call__(self) -> SqlAlchemyUnitOfWork:
        return FailingOnSaveUnitOfWork(self.database, self._clock)


def failing_harness(test_db: ScratchDatabase, clock: FakeClock) -> Harness:
    harness = Harness(test_db, clock)
    harness.factory = FailingOnSaveFactory(harness.database, clock)
    harness.engine = Engine(harness.factory, build_registry(), ttl=timedelta(hours=24), clock=clock)
    return harness


async def test_failure_after_the_machine_insert_leaves_no_row_and_the_state_unchanged(
    test_db: ScratchDatabase, clock: FakeClock
) -> None:
    harness = failing_harness(test_db, clock)
    chat = Chat(harness)
    try:
        for answer in ("/addmachine", "Press 9", "Haas", "/skip", "SN-1", "/skip"):
            await chat.say(answer)
        [before] = await harness.rows(ConversationStateRow)
        outbox_before = len(await harness.rows(OutboxMessageRow))

        replies = await chat.say("these notes trigger the save")

        assert replies == [APOLOGY]
        assert await harness.rows(UserMachineRow) == []
        [after] = await harness.rows(ConversationStateRow)
        assert (after.state_data, after.version, after.current_step) == (
            before.state_data,
            before.version,
            before.current_step,
        )
        outbox = await harness.rows(OutboxMessageRow)
        assert len(outbox) == outbox_before + 1 and outbox[-1].payload["text"] == APOLOGY
        [failed] = await harness.rows(TelegramUpdateRow, TelegramUpdateRow.outcome == FAILED)
        assert "disk on fire" in failed.error

        # With the fault gone, the conversation carries on at the same question; nothing was lost.
        await harness.close()
        harness = chat.harness = Harness(test_db, clock)
        replies = await chat.say("these notes trigger the save")
        assert "Saved “Press 9”" in replies[0]
        [machine] = await harness.rows(UserMachineRow)
        assert (machine.manufacturer, machine.serial_number, machine.notes) == (
            "Haas",
            "SN-1",
            "these notes trigger the save",
        )
    finally:
        await harness.close()


async def test_a_nickname_taken_from_another_chat_meanwhile_is_asked_again(
    test_db: ScratchDatabase, clock: FakeClock
) -> None:
    harness = Harness(test_db, clock)
    private, group = Chat(harness, chat_id=1, user_id=5), Chat(harness, chat_id=2, user_id=5)
    try:
        for answer in ("/addmachine", "Press 9", "Haas", "/skip", "/skip", "/skip"):
            await private.say(answer)
        for answer in ("/addmachine", "press 9", "/skip", "/skip", "/skip", "/skip", "/skip"):
            await group.say(answer)
        replies = await private.say("last note")
        assert replies[0].startswith("You already have a machine called “press 9”.")
        assert "Step 1 of 6 · Nickname" in replies[0]
        replies = await private.say("Press 10")
        assert "Saved “Press 10”" in replies[0]
        machine = [m for m in await harness.machines(5) if m.nickname == "Press 10"][0]
        assert (machine.manufacturer, machine.notes) == ("Haas", "last note")
    finally:
        await harness.close()
