"""One step, one transaction: a failure anywhere in a step leaves no partial rows, on both databases."""

from __future__ import annotations

from durabot.actions.add_machine import AddMachineActions
from durabot.bootstrap import build_registry
from durabot.clock import FakeClock
from durabot.engine.ports import Domains
from durabot.engine.runner import APOLOGY, FAILED
from durabot.flows.model import Answers
from durabot.replies import Reply
from durabot.storage.tables import ConversationStateRow, OutboxMessageRow, TelegramUpdateRow, UserMachineRow
from tests.conftest import ScratchDatabase
from tests.integration.conftest import Chat, Harness


class InjectedFailure(RuntimeError):
    """The fault a test injects."""


class FailAfterInsert(AddMachineActions):
    """Saves the machine (the INSERT reaches the database), then fails before the step commits."""

    async def complete(self, domains: Domains, user_id: int, answers: Answers) -> Reply:
        await super().complete(domains, user_id, answers)
        assert await domains.machines.count(user_id) == 1, "the insert must have happened inside the transaction"
        raise InjectedFailure("disk on fire")


def failing_registry() -> object:
    registry = build_registry()
    entry = registry.flows[0]
    registry.flows[0] = type(entry)(entry.flow, FailAfterInsert(), entry.description)
    return registry


async def test_failure_after_the_machine_insert_leaves_no_row_and_the_state_unchanged(
    test_db: ScratchDatabase, clock: FakeClock
) -> None:
    harness = Harness(test_db, clock, failing_registry())  # type: ignore[arg-type]
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
