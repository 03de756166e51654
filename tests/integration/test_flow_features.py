"""Flow features every flow gets from the engine — choices as buttons, conditions, stale buttons — on both databases."""

from __future__ import annotations

from typing import Any

from durabot.clock import FakeClock
from durabot.engine.ports import Domains
from durabot.engine.registry import BasicFlowActions, Registry
from durabot.flows.model import Answers, Choice, Flow, Step, choice_of
from durabot.replies import Reply
from durabot.storage.tables import ConversationStateRow
from tests.conftest import ScratchDatabase
from tests.integration.conftest import Chat, Harness

KINDS = (Choice("pump", "Pump"), Choice("valve", "Valve"))
PART_FLOW = Flow(
    name="part",
    version=1,
    title="describing a part",
    command="part",
    steps=(
        Step("kind", "Kind", "What kind of part?", choice_of(KINDS), choices=KINDS),
        Step("rate", "Flow rate", "Its flow rate?", condition=lambda answers: answers.get("kind") == "pump"),
        Step("note", "Note", "A note?", optional=True),
    ),
)


class Summarise(BasicFlowActions):
    """Finishing the flow just reports the answers."""

    async def check(self, domains: Domains, user_id: int, step: Step, value: Any) -> str | None:
        return None

    async def complete(self, domains: Domains, user_id: int, answers: Answers) -> Reply:
        return Reply(f"done: {dict(answers.values)}")


def part_chat(test_db: ScratchDatabase, clock: FakeClock) -> Chat:
    registry = Registry()
    registry.add_flow(PART_FLOW, Summarise(), "describe a part")
    return Chat(Harness(test_db, clock, registry))


async def test_choices_are_buttons_and_conditions_shape_the_questions(test_db: ScratchDatabase, clock: FakeClock) -> None:
    chat = part_chat(test_db, clock)
    try:
        replies = await chat.say("/part")
        # The progress line counts the questions known to apply: the flow rate only once "pump" is chosen.
        assert replies[0].startswith("Step 1 of 2 · Kind")
        assert [[b.label for b in row] for row in chat.last[0].buttons] == [["Pump"], ["Valve"], ["Cancel"]]
        replies = await chat.press("Pump")
        assert replies[0].startswith("Step 2 of 3 · Flow rate")
        replies = await chat.say("/back")
        assert replies[0].startswith("Going back. Your previous answer was: pump")
        replies = await chat.say("valve")
        assert replies[0].startswith("Step 2 of 2 · Note")
        replies = await chat.say("gasket")
        assert replies == ["done: {'kind': 'valve', 'note': 'gasket'}"]
    finally:
        await chat.harness.close()


async def test_a_choice_typed_wrongly_is_refused_with_the_options(test_db: ScratchDatabase, clock: FakeClock) -> None:
    chat = part_chat(test_db, clock)
    try:
        await chat.say("/part")
        replies = await chat.say("gearbox")
        assert replies[0].startswith("Please pick one of: Pump, Valve.")
        assert "Step 1 of 2 · Kind" in replies[0]
    finally:
        await chat.harness.close()


async def test_a_button_from_an_earlier_step_has_expired_and_changes_nothing(
    test_db: ScratchDatabase, clock: FakeClock
) -> None:
    chat = part_chat(test_db, clock)
    try:
        await chat.say("/part")
        first_question = chat.last
        await chat.press("Pump")
        [before] = await chat.harness.rows(ConversationStateRow)
        chat.last = first_question
        assert await chat.press("Valve") == ["This button has expired."]
        [after] = await chat.harness.rows(ConversationStateRow)
        assert (after.state_data, after.version) == (before.state_data, before.version)
        await chat.say("/cancel")
        chat.last = first_question
        assert await chat.press("Valve") == ["This button has expired."]
        assert await chat.harness.rows(ConversationStateRow) == []
    finally:
        await chat.harness.close()


async def test_a_button_from_a_cancelled_conversation_never_acts_on_the_next_one(chat: Chat) -> None:
    await chat.say("/addmachine")
    old_question = chat.last
    await chat.say("/cancel")
    await chat.say("/addmachine")
    chat.last = old_question
    assert await chat.press("Cancel") == ["This button has expired."]
    [conversation] = await chat.harness.conversations()
    assert conversation.current_step == "add_machine:nickname"
