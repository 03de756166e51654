"""What the engine can do: flows with their domain actions, plain commands and button handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from durabot.engine.ports import UnitOfWork
from durabot.flows.model import Answers, Flow, Step
from durabot.replies import Reply


class AnswerRejected(Exception):
    """Raised by :meth:`FlowActions.complete` when an earlier answer is no longer acceptable.

    The engine keeps the other answers, drops this one and asks its question again with ``message``.
    """

    def __init__(self, step_key: str, message: str) -> None:
        super().__init__(message)
        self.step_key = step_key
        self.message = message


class FlowActions(Protocol):
    """The domain side of a flow: checks that need stored data, and what finishing it writes."""

    async def check(self, uow: UnitOfWork, user_id: int, step: Step, value: Any) -> str | None:
        """A reason to refuse ``value`` for ``step`` that the flow cannot see alone, or ``None``."""

    async def complete(self, uow: UnitOfWork, user_id: int, answers: Answers) -> Reply:
        """Write the flow's result in the step's transaction and return the closing message."""


class CommandHandler(Protocol):
    """A command that is not a flow, such as ``/library``."""

    async def run(self, uow: UnitOfWork, user_id: int, argument: str) -> list[Reply]:
        """The replies to the command."""


class ButtonHandler(Protocol):
    """Buttons whose data starts with a given prefix and that carry no conversation state."""

    async def press(self, uow: UnitOfWork, user_id: int, data: str) -> list[Reply] | None:
        """The replies to a press, or ``None`` when the data is not understood (treated as expired)."""


@dataclass(frozen=True)
class FlowEntry:
    """A flow, the actions behind it, and the help line for its command."""

    flow: Flow
    actions: FlowActions
    description: str


@dataclass(frozen=True)
class CommandEntry:
    """A plain command, and its help line."""

    name: str
    handler: CommandHandler
    description: str


@dataclass
class Registry:
    """Everything the bot understands, in the order its help lists it."""

    about: str = "I keep track of things for you, one question at a time."
    flows: list[FlowEntry] = field(default_factory=list)
    commands: list[CommandEntry] = field(default_factory=list)
    buttons: dict[str, ButtonHandler] = field(default_factory=dict)

    def add_flow(self, flow: Flow, actions: FlowActions, description: str) -> None:
        """Register a flow under its command."""
        self.flows.append(FlowEntry(flow, actions, description))

    def add_command(self, name: str, handler: CommandHandler, description: str) -> None:
        """Register a plain command."""
        self.commands.append(CommandEntry(name, handler, description))

    def add_buttons(self, prefix: str, handler: ButtonHandler) -> None:
        """Route buttons whose data starts with ``prefix`` to ``handler``."""
        self.buttons[prefix] = handler

    def flow_named(self, name: str) -> FlowEntry | None:
        """The flow stored under ``name``."""
        return next((entry for entry in self.flows if entry.flow.name == name), None)

    def flow_for_command(self, command: str) -> FlowEntry | None:
        """The flow that ``/command`` starts."""
        return next((entry for entry in self.flows if entry.flow.command == command), None)

    def command(self, name: str) -> CommandEntry | None:
        """The plain command called ``name``."""
        return next((entry for entry in self.commands if entry.name == name), None)

    def button_handler(self, data: str) -> tuple[ButtonHandler, str] | None:
        """The handler for button ``data`` and the data after its prefix."""
        for prefix, handler in self.buttons.items():
            if data.startswith(prefix):
                return handler, data[len(prefix) :]
        return None

    def help_text(self) -> str:
        """The list of commands, as /help shows it."""
        lines = [f"/{entry.flow.command} — {entry.description}" for entry in self.flows]
        lines += [f"/{entry.name} — {entry.description}" for entry in self.commands]
        lines += [
            "/skip — skip an optional question",
            "/back — go back to the previous question",
            "/cancel — stop what you are doing",
            "/help — show this list",
        ]
        return "\n".join(lines)
