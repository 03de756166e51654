"""What the sandbox remembers per bot token: chats and their messages, files, buttons pressed, settings."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from durabot.sandbox.errors import forbidden, unauthorized
from durabot.sandbox.faults import FaultPlan
from durabot.sandbox.files import FileStore
from durabot.sandbox.updates import UpdateQueue

BOT_FIRST_NAME = "durabot sandbox"
BOT_USERNAME = "durabot_sandbox_bot"
TOKEN_PATTERN = re.compile(r"^(\d+):(\S+)$")


def now() -> int:
    """Unix time in whole seconds, as Telegram dates are."""
    return int(time.time())


@dataclass
class StoredMessage:
    """A message in a chat, from the user or from the bot.

    Attributes:
        message: The Telegram ``Message`` as it stands now.
        from_bot: Sent by the bot (``True``) or by the user.
        markup: The ``reply_markup`` the bot sent, of any kind (a ``Message`` only shows inline keyboards).
        history: Earlier versions of ``message``, oldest first; empty unless it was edited.
    """

    message: dict[str, Any]
    from_bot: bool
    markup: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def message_id(self) -> int:
        """The message's id within its chat."""
        return int(self.message["message_id"])


@dataclass
class Chat:
    """One chat: its messages in order and the id the next one gets (shared by user and bot, as in Telegram)."""

    chat_id: int
    first_name: str | None = None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1

    def new_message_id(self) -> int:
        """Reserve the next message id."""
        self.next_message_id += 1
        return self.next_message_id - 1

    def describe(self) -> dict[str, Any]:
        """The ``Chat`` object of messages in this chat; negative ids are groups."""
        if self.chat_id < 0:
            return {"id": self.chat_id, "type": "group", "title": "Sandbox group"}
        return {"id": self.chat_id, "type": "private", "first_name": self.first_name or "Sandbox user"}

    def add(self, stored: StoredMessage) -> StoredMessage:
        """Append a message."""
        self.messages[stored.message_id] = stored
        return stored


@dataclass
class CallRecord:
    """One Bot API call received: what was asked, when (monotonic seconds) and the status answered."""

    method: str
    params: dict[str, Any]
    at: float
    status: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as the test API lists it."""
        return {"method": self.method, "params": self.params, "at": self.at, "status": self.status}


@dataclass
class Webhook:
    """Where updates are pushed while a webhook is set, and how the last delivery went."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class CallbackQuery:
    """A button press sent to the bot, and whether the bot has answered it."""

    query_id: str
    chat_id: int
    message_id: int
    answered: bool = False


class BotState:
    """Everything one bot token has: its user, update queue, chats, files and test settings."""

    def __init__(self, token: str, bot_id: int) -> None:
        self.token = token
        self.bot_id = bot_id
        self.queue = UpdateQueue()
        self.poll_generation = 0
        self._callback_numbers = itertools.count(secrets.randbelow(10**6) * 10**12 + 1)
        self.reset()

    def reset(self) -> None:
        """Forget everything but the token and the update id counter; a new :attr:`epoch` begins."""
        self.epoch = secrets.token_hex(8)
        """Changes whenever the sandbox forgets its chats (a new sandbox, a reset): earlier messages are gone."""
        self.queue.reset()
        self.chats: dict[int, Chat] = {}
        self.files = FileStore()
        self.callback_queries: dict[str, CallbackQuery] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.commands: dict[str, list[dict[str, str]]] = {}
        self.webhook: Webhook | None = None
        self.allowed_updates: list[str] | None = None
        self.faults = FaultPlan()
        self.blocked_chats: set[int] = set()
        self.calls: list[CallRecord] = []

    @property
    def user(self) -> dict[str, Any]:
        """The bot as the ``from`` of its messages."""
        return {"id": self.bot_id, "is_bot": True, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME}

    def chat(self, chat_id: int) -> Chat:
        """The chat with ``chat_id``, created on first use (any chat id works)."""
        return self.chats.setdefault(chat_id, Chat(chat_id))

    def ensure_not_blocked(self, chat_id: int) -> None:
        """Refuse to reach a chat that blocked the bot.

        Raises:
            ApiError: 403 "Forbidden: bot was blocked by the user".
        """
        if chat_id in self.blocked_chats:
            raise forbidden("bot was blocked by the user")

    def new_callback_query(self, chat_id: int, message_id: int) -> CallbackQuery:
        """Register a fresh, unanswered button press."""
        query = CallbackQuery(str(next(self._callback_numbers)), chat_id, message_id)
        self.callback_queries[query.query_id] = query
        return query


class BotRegistry:
    """Bot states by token, made on a token's first use."""

    def __init__(self, on_new_bot: Callable[[BotState], None] | None = None) -> None:
        self._bots: dict[str, BotState] = {}
        self._on_new_bot = on_new_bot

    def __iter__(self) -> Iterator[BotState]:
        return iter(self._bots.values())

    def get(self, token: str) -> BotState:
        """The state of the bot with ``token``.

        Raises:
            ApiError: 401 when ``token`` is not of the form ``<digits>:<secret>``.
        """
        bot = self._bots.get(token)
        if bot is not None:
            return bot
        match = TOKEN_PATTERN.match(token)
        if match is None:
            raise unauthorized()
        bot = self._bots[token] = BotState(token, int(match.group(1)))
        if self._on_new_bot is not None:
            self._on_new_bot(bot)
        return bot
