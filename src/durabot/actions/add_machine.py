"""The domain side of the add-machine flow: the nickname clash check and saving the machine."""

from __future__ import annotations

from typing import Any

from durabot.domain.machines import DuplicateNicknameError, Machine, save_machine
from durabot.engine.ports import Domains
from durabot.engine.registry import AnswerRejected, BasicFlowActions
from durabot.flows.add_machine import describe_machine, draft_from_answers
from durabot.flows.model import Answers, Step
from durabot.replies import Reply


def clash_message(existing: Machine) -> str:
    """Why a nickname was refused, naming the machine that already has it."""
    make = " ".join(part for part in (existing.manufacturer, existing.model_number) if part)
    which = f"“{existing.nickname}”" + (f" ({make})" if make else "")
    return f"You already have a machine called {which}. Please choose a different nickname."


class AddMachineActions(BasicFlowActions):
    """Checks nicknames against the user's library and saves the finished machine."""

    async def check(self, domains: Domains, user_id: int, step: Step, value: Any) -> str | None:
        if step.key != "nickname":
            return None
        existing = await domains.machines.find_by_nickname(user_id, value)
        return clash_message(existing) if existing else None

    async def complete(self, domains: Domains, user_id: int, answers: Answers) -> Reply:
        draft = draft_from_answers(user_id, answers)
        try:
            machine = await save_machine(domains.machines, draft)
        except DuplicateNicknameError as clash:
            # The nickname was free when typed but has been taken since (from another chat of the
            # same user): keep the other answers and ask for the nickname again.
            raise AnswerRejected("nickname", clash_message(clash.existing)) from clash
        return Reply(
            f"Saved “{machine.nickname}” to your library.\n{describe_machine(machine)}\n\n"
            "Send /library to see all your machines, or /addmachine to add another."
        )

