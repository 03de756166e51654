"""The unit tests' chat driver: a Chat that talks to the engine like a user, and what each turn sent back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from durabot.engine.conversation import Conversation
from durabot.engine.events import Event
from durabot.engine.runner import Applied, Engine
from durabot.replies import Button, CallbackAnswer, Outgoing, Reply
from durabot.testing import FakeUnitOfWorkFactory

TTL = timedelta(hours=24)


@dataclass
class Turn:
    """What the bot sent back for one update (or for every update applied by one call)."""

    applied: list[Applied]

    @property
    def outgoing(self) -> list[Outgoing]:
        return [message for result in self.applied for message in result.outgoing]

    @property
    def replies(self) -> list[Reply]:
        return [message for message in self.outgoing if isinstance(message, Reply)]

    @property
    def callback_answers(self) -> list[CallbackAnswer]:
        return [message for message in self.outgoing if isinstance(message, CallbackAnswer)]

    @property
    def texts(self) -> list[str]:
        return [reply.text for reply in self.replies]

    @property
    def text(self) -> str:
        """The text of the last reply (the one that carries the current question, if any)."""
        assert self.replies, f"expected a reply, got {self.outgoing!r}"
        return self.replies[-1].text

    @property
    def buttons(self) -> dict[str, str]:
        """Label → data of the buttons under the last reply."""
        if not self.replies:
            return {}
        return {button.label: button.data for row in self.replies[-1].buttons for button in row}

    @property
    def button_rows(self) -> tuple[tuple[Button, ...], ...]:
        return self.replies[-1].buttons if self.replies else ()


@dataclass
class Chat:
    """One user in one chat talking to the engine; every call returns the bot's :class:`Turn`.

    By default the user's private chat, whose id is the user's id (in Telegram as here); a chat id
    other than the user id is a group.
    """

    engine: Engine
    factory: FakeUnitOfWorkFactory
    update_ids: Iterator[int]
    chat_id: int = 7
    user_id: int = 7
    turns: list[Turn] = field(default_factory=list)

    def next_update_id(self) -> int:
        return next(self.update_ids)

    async def send(self, event: Event) -> Turn:
        turn = Turn(await self.engine.handle(event))
        self.turns.append(turn)
        return turn

    async def say(self, text: str) -> Turn:
        return await self.send(Event.message(self.next_update_id(), self.chat_id, self.user_id, text))

    async def content(self, content_type: str) -> Turn:
        return await self.send(Event.content(self.next_update_id(), self.chat_id, self.user_id, content_type))

    async def press_data(self, data: str) -> Turn:
        update_id = self.next_update_id()
        return await self.send(Event.button(update_id, self.chat_id, self.user_id, data, f"cb-{update_id}"))

    async def press(self, label: str, turn: Turn | None = None) -> Turn:
        """Press the button labelled ``label`` under ``turn`` (default: the latest turn that has buttons)."""
        source = turn or next((t for t in reversed(self.turns) if t.buttons), Turn([]))
        assert label in source.buttons, f"no {label!r} button in {source.buttons!r}"
        return await self.press_data(source.buttons[label])

    def conversations(self) -> list[Conversation]:
        """The committed conversations of this chat's user in this chat."""
        return [
            c for c in self.factory.data.conversations.values() if (c.chat_id, c.user_id) == (self.chat_id, self.user_id)
        ]

    def conversation(self) -> Conversation:
        """The one committed conversation of this chat (fails if there is not exactly one)."""
        found = self.conversations()
        assert len(found) == 1, f"expected one conversation, found {found!r}"
        return found[0]

    async def add_machine(self, nickname: str, **details: str) -> Turn:
        """Run the whole add-machine flow, typing ``details`` and skipping every other optional step."""
        await self.say("/addmachine")
        turn = await self.say(nickname)
        for key in ("manufacturer", "model_number", "serial_number", "location", "notes"):
            turn = await self.say(details.get(key, "/skip"))
        return turn
