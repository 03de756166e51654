"""What the engine can do: flows with their domain actions, plain commands and button handlers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from durabot.engine.ports import Domains
from durabot.flows.model import Answers, Flow, Step
from durabot.replies import Outgoing, Reply

TELEGRAM_LINK = "https://t.me/"


class AnswerRejected(Exception):
    """Raised by :meth:`FlowActions.complete` when an earlier answer is no longer acceptable.

    The engine keeps the other answers, drops this one and asks its question again with ``message``.
    """

    def __init__(self, step_key: str, message: str) -> None:
        super().__init__(message)
        self.step_key = step_key
        self.message = message


class FlowActions(Protocol):
    """The domain side of a flow, called inside the step's transaction with the step's :class:`Domains`.

    Subclass :class:`BasicFlowActions` to get sensible defaults for everything but
    :meth:`complete`.
    """

    async def begin(self, domains: Domains, user_id: int, handler: str) -> FlowActions:
        """An event on a conversation of this flow begins (``handler`` names the event).

        Returns the actions for the rest of the event: ``self``, or actions that keep what was
        loaded here so that the step does not load it again.
        """

    async def check(self, domains: Domains, user_id: int, step: Step, value: Any) -> str | None:
        """A reason to refuse ``value`` for ``step`` that the flow cannot see alone, or ``None``."""

    async def complete(self, domains: Domains, user_id: int, answers: Answers) -> Reply:
        """Write the flow's result in the step's transaction and return the closing message."""

    async def opened(self, domains: Domains, user_id: int, create: bool) -> Answers | None:
        """The flow's command was used with no conversation in this chat.

        Returns the answers to carry on from — empty for a fresh start — or ``None`` when
        there is nothing to resume and ``create`` is false.
        """

    async def moved(self, domains: Domains, user_id: int, answers: Answers) -> None:
        """The answers changed (answer, skip or back) and the flow is not finished."""

    async def cancelled(self, domains: Domains, user_id: int) -> str | None:
        """The user cancelled; returns what to tell them beyond the default, or ``None`` if nothing was open."""

    async def status(self, domains: Domains, user_id: int, answers: Answers) -> str:
        """How far the user is, for the flow's status command."""

    def expired_notice(self, flow: Flow, resuming: bool) -> str | None:
        """What to tell a user whose conversation expired (``resuming``: they just sent the flow's command)."""


class BasicFlowActions:
    """Defaults for flows whose only domain write happens at the end."""

    async def begin(self, domains: Domains, user_id: int, handler: str) -> FlowActions:
        return self

    async def check(self, domains: Domains, user_id: int, step: Step, value: Any) -> str | None:
        return None

    async def complete(self, domains: Domains, user_id: int, answers: Answers) -> Reply:
        raise NotImplementedError

    async def opened(self, domains: Domains, user_id: int, create: bool) -> Answers | None:
        return Answers() if create else None

    async def moved(self, domains: Domains, user_id: int, answers: Answers) -> None:
        return None

    async def cancelled(self, domains: Domains, user_id: int) -> str | None:
        return "Nothing from it was saved."

    async def status(self, domains: Domains, user_id: int, answers: Answers) -> str:
        return f"{len(answers.values)} question(s) answered so far."

    def expired_notice(self, flow: Flow, resuming: bool) -> str | None:
        return (
            f"Your unfinished conversation ({flow.title}) expired after a long pause "
            f"and was cleared. Send /{flow.command} to start again."
        )


class CommandHandler(Protocol):
    """A command that is not a flow, such as ``/library``."""

    async def run(self, domains: Domains, user_id: int, argument: str) -> Sequence[Outgoing]:
        """The replies to the command."""


class ButtonHandler(Protocol):
    """Buttons whose data starts with a given prefix and that carry no conversation state."""

    async def press(self, domains: Domains, user_id: int, data: str) -> Sequence[Outgoing] | None:
        """The replies to a press, or ``None`` when the data is not understood (treated as expired)."""


@dataclass(frozen=True)
class PrivateOnly:
    """Marks a flow, command or set of buttons as for private chats only (personal data never goes to a group).

    Attributes:
        note: What a group is told instead, e.g. "Please message me privately to continue your intake."
        start_parameter: The deep-link payload that carries on in the private chat: ``/start <start_parameter>``
            (letters, digits, ``_`` and ``-``, at most 64).
    """

    note: str
    start_parameter: str


@dataclass(frozen=True)
class FlowEntry:
    """A flow, the actions behind it, the help line for its command, and its optional extra commands."""

    flow: Flow
    actions: FlowActions
    description: str
    resume_command: str | None = None
    cancel_command: str | None = None
    status_command: str | None = None
    private: PrivateOnly | None = None

    @property
    def command(self) -> str:
        """The command that starts the flow."""
        return self.flow.command

    def extra_commands(self) -> list[tuple[str, str]]:
        """``(command, description)`` of the resume, status and cancel commands it has."""
        extras = [
            (self.resume_command, "carry on where you left off"),
            (self.status_command, "how far you are"),
            (self.cancel_command, "stop and close it"),
        ]
        return [(name, description) for name, description in extras if name]

    def answers_to(self, command: str) -> bool:
        """Whether ``/command`` is this flow's command or one of its extra commands."""
        return command in (self.flow.command, self.resume_command, self.cancel_command, self.status_command)


@dataclass(frozen=True)
class CommandEntry:
    """A plain command, and its help line."""

    name: str
    handler: CommandHandler
    description: str
    private: PrivateOnly | None = None

    @property
    def command(self) -> str:
        """The command itself."""
        return self.name


@dataclass(frozen=True)
class ButtonEntry:
    """Buttons routed by the prefix of their data."""

    handler: ButtonHandler
    private: PrivateOnly | None = None


@dataclass
class Registry:
    """Everything the bot understands, in the order its help lists it.

    ``bot_username`` (without the "@") lets a group be given a link to the private chat; without it the
    group is told in words where to go.
    """

    about: str = "I keep track of things for you, one question at a time."
    flows: list[FlowEntry] = field(default_factory=list)
    commands: list[CommandEntry] = field(default_factory=list)
    buttons: dict[str, ButtonEntry] = field(default_factory=dict)
    bot_username: str | None = None

    def add_flow(
        self,
        flow: Flow,
        actions: FlowActions,
        description: str,
        resume_command: str | None = None,
        cancel_command: str | None = None,
        status_command: str | None = None,
        private: PrivateOnly | None = None,
    ) -> None:
        """Register a flow under its command, with optional resume, cancel and status commands.

        With ``private`` the flow runs in private chats only.
        """
        entry = FlowEntry(flow, actions, description, resume_command, cancel_command, status_command, private)
        self.flows.append(entry)

    def add_command(
        self, name: str, handler: CommandHandler, description: str, private: PrivateOnly | None = None
    ) -> None:
        """Register a plain command (with ``private``: for private chats only)."""
        self.commands.append(CommandEntry(name, handler, description, private))

    def add_buttons(self, prefix: str, handler: ButtonHandler, private: PrivateOnly | None = None) -> None:
        """Route buttons whose data starts with ``prefix`` to ``handler`` (with ``private``: in private chats only)."""
        self.buttons[prefix] = ButtonEntry(handler, private)

    def flow_named(self, name: str) -> FlowEntry | None:
        """The flow stored under ``name``."""
        return next((entry for entry in self.flows if entry.flow.name == name), None)

    def flow_for_command(self, command: str) -> FlowEntry | None:
        """The flow that ``/command`` starts."""
        return next((entry for entry in self.flows if entry.flow.command == command), None)

    def flow_for_alias(self, command: str) -> tuple[FlowEntry, str] | None:
        """The flow whose resume, cancel or status command ``/command`` is, and which one ("resume"…)."""
        for entry in self.flows:
            for kind, name in (
                ("resume", entry.resume_command),
                ("cancel", entry.cancel_command),
                ("status", entry.status_command),
            ):
                if name == command:
                    return entry, kind
        return None

    def command(self, name: str) -> CommandEntry | None:
        """The plain command called ``name``."""
        return next((entry for entry in self.commands if entry.name == name), None)

    def button_handler(self, data: str) -> tuple[ButtonEntry, str] | None:
        """The buttons entry for button ``data`` and the data after its prefix."""
        for prefix, entry in self.buttons.items():
            if data.startswith(prefix):
                return entry, data[len(prefix) :]
        return None

    def deep_linked(self, start_parameter: str) -> FlowEntry | CommandEntry | None:
        """The private-only flow or command that ``/start <start_parameter>`` carries on with."""
        entries: list[FlowEntry | CommandEntry] = [*self.flows, *self.commands]
        return next((e for e in entries if e.private and e.private.start_parameter == start_parameter), None)

    def private_entry(self, command: str, argument: str) -> FlowEntry | CommandEntry | None:
        """The private-only flow or command that ``/command argument`` addresses, if it is one."""
        if command == "start":
            return self.deep_linked(argument)
        flow = next((entry for entry in self.flows if entry.answers_to(command)), None)
        found = flow or self.command(command)
        return found if found is not None and found.private is not None else None

    def private_chat_link(self, private: PrivateOnly) -> str | None:
        """The link that opens the private chat and carries on there, when the bot's username is known."""
        if not self.bot_username:
            return None
        return f"{TELEGRAM_LINK}{self.bot_username}?start={private.start_parameter}"

    def help_text(self) -> str:
        """The list of commands, as /help shows it."""
        lines = []
        for entry in self.flows:
            lines.append(f"/{entry.flow.command} — {entry.description}")
            lines += [f"/{name} — {description}" for name, description in entry.extra_commands()]
        lines += [f"/{entry.name} — {entry.description}" for entry in self.commands]
        lines += [
            "/skip — skip an optional question",
            "/back — go back to the previous question",
            "/cancel — stop what you are doing",
            "/help — show this list",
        ]
        return "\n".join(lines)
