"""The engine's ports, named by role: what its storage must offer, and the Domains it hands to flows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from durabot.domain.cases import CaseRepository, IntakeProgressRepository
from durabot.domain.machines import MachineRepository
from durabot.engine.conversation import Conversation, Tombstone
from durabot.engine.events import Event, Received
from durabot.engine.writes import ConversationWrite, WriteSet
from durabot.replies import Outgoing


class StaleConversationError(Exception):
    """A conversation changed or vanished between loading and saving it."""


class ConversationStore(Protocol):
    """Where conversations live between steps."""

    async def active(self, user_id: int, chat_id: int) -> Conversation | None:
        """The user's most recently touched conversation in this chat, expired or not."""

    async def find(self, user_id: int, chat_id: int, flow_name: str) -> Conversation | None:
        """The user's conversation of this flow in this chat, expired or not."""

    async def of_chat(self, user_id: int, chat_id: int) -> list[Conversation]:
        """Every conversation of the user in this chat (one per flow at most), expired or not."""

    async def apply(self, write: ConversationWrite) -> None:
        """Insert, update or delete one conversation as a step's write-set says.

        An insert keeps the write's id and version. An update stores the new state only where the
        row still has ``expected_version``; a delete removes the row whatever its version.

        Raises:
            StaleConversationError: an update found the conversation changed or gone.
        """

    async def save(self, conversation: Conversation) -> Conversation:
        """Insert or update; returns it with its id and the next version.

        Raises:
            StaleConversationError: the stored version is not the one loaded.
        """

    async def delete(self, conversation_id: int) -> None:
        """Remove a conversation (finished, cancelled or expired)."""

    async def delete_expired(self, now: datetime) -> int:
        """Remove every conversation that expired before ``now``, leaving a tombstone for each; returns how many.

        A tombstone already there for the same user, chat and flow is replaced.
        """

    async def take_tombstones(self, user_id: int, chat_id: int) -> list[Tombstone]:
        """Remove and return the tombstones of the user's conversations in this chat."""

    async def tombstones(self, user_id: int, chat_id: int) -> list[Tombstone]:
        """The tombstones of the user's conversations in this chat, oldest expiry first."""

    async def delete_tombstones(self, user_id: int, chat_id: int) -> None:
        """Remove the tombstones of the user's conversations in this chat."""

    async def prune_tombstones(self, created_before: datetime) -> int:
        """Remove tombstones left before ``created_before``; returns how many."""

    async def of_user(self, user_id: int) -> tuple[list[Conversation], list[Tombstone]]:
        """Every conversation and tombstone of the user, in every chat."""

    async def forget_user(self, user_id: int) -> int:
        """Remove every conversation and tombstone of the user; returns how many conversations."""


@dataclass(frozen=True)
class PendingUpdate:
    """An update waiting in the inbox: its row there, the event to apply, and whether more of its chat wait behind it."""

    inbox_id: int
    event: Event
    more: bool = False


@dataclass(frozen=True)
class Arrival:
    """What the inbox knows of an arriving update before storing it: stored already, and whether its chat has a backlog."""

    known: bool
    behind: bool


class Inbox(Protocol):
    """Received updates, kept until applied, and the record of which were applied."""

    async def add(self, items: Sequence[Received], now: datetime, raw: Mapping[int, Any] | None = None) -> int:
        """Store updates not seen before; returns how many were new.

        An update is known when the same bot already stored the same ``update_id`` with the same
        content (``raw``, fingerprinted); a different update under a known id is new. Ignored
        updates are stored already done, with their reason.
        """

    async def arrival(self, item: Event, raw: Any = None) -> Arrival:
        """Whether ``item`` (``raw``: its JSON) is stored already, and whether its chat has updates waiting.

        A known id with other content is logged as reused, and is not known.
        """

    async def record(self, item: Event, now: datetime, raw: Any, outcome: str, error: str | None = None) -> None:
        """Store an update already dealt with (the hot path applies it before it is stored)."""

    async def next_pending(self, chat_id: int) -> PendingUpdate | None:
        """The chat's unapplied update with the lowest ``update_id`` (the first to arrive of equal ids).

        Its ``more`` says whether another update of the chat waits behind it, so that the engine
        needs no further look-up to learn the chat is done.
        """

    async def chats_with_pending(self, limit: int = 100) -> list[int]:
        """Chats that have unapplied updates, oldest first."""

    async def mark_done(self, inbox_id: int, outcome: str, now: datetime, error: str | None = None) -> None:
        """Record that an update has been dealt with, and how."""

    async def redact(self, processed_before: datetime) -> int:
        """Drop the content of updates dealt with before ``processed_before``, keeping their identity."""

    async def prune(self, processed_before: datetime) -> int:
        """Forget updates dealt with before ``processed_before``; returns how many."""

    async def forget_user(self, user_id: int) -> int:
        """Drop the content of the user's updates that were dealt with, keeping their identity; returns how many.

        Pending updates keep theirs, so they are still applied (the one being applied is among them).
        """


class Outbox(Protocol):
    """Messages waiting to be sent, written in the same transaction as the step that produced them."""

    async def add(self, chat_id: int, messages: Sequence[Outgoing], update_id: int | None, now: datetime) -> None:
        """Queue ``messages`` for the chat, in order."""

    async def prune_sent(self, sent_before: datetime) -> int:
        """Remove messages sent before ``sent_before``; returns how many."""

    async def forget_chat(self, chat_id: int) -> int:
        """Remove every message queued for or sent to the chat so far, whatever its state; returns how many."""


class UserRecords(Protocol):
    """What the engine's own stores keep about a user, for the user's export and deletion of their data."""

    async def of_user(self, user_id: int) -> tuple[list[Conversation], list[Tombstone]]:
        """Every conversation and tombstone of the user, in every chat."""

    async def forget_user(self, user_id: int) -> int:
        """Remove the user's conversations, tombstones and private chat's replies, and their handled updates' text.

        Returns:
            How many conversations were removed.
        """


class Domains(Protocol):
    """What flows, commands and buttons work on inside a step's transaction; the engine only hands it over."""

    @property
    def machines(self) -> MachineRepository:
        """The users' equipment libraries."""

    @property
    def cases(self) -> CaseRepository:
        """The practice's cases."""

    @property
    def intake(self) -> IntakeProgressRepository:
        """How far each case's intake is."""

    @property
    def user_records(self) -> UserRecords:
        """What the engine keeps about each user, for /export_my_data and /delete_my_data."""


class UnitOfWork(Protocol):
    """One transaction over the engine's stores; nothing is kept unless :meth:`commit` is called."""

    conversations: ConversationStore
    inbox: Inbox
    outbox: Outbox

    @property
    def domains(self) -> Domains:
        """The domain stores in this same transaction, for the registry's flows, commands and buttons."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def lock_chat(self, chat_id: int) -> None:
        """Hold the chat's lock until the transaction ends; other workers on the chat wait."""

    async def apply(self, writes: WriteSet, event: Event, now: datetime) -> None:
        """Write a step's write-set for ``event`` in this transaction, as :func:`~durabot.engine.apply.apply_writes` does.

        A store may write it in fewer statements, to the same effect.

        Raises:
            StaleConversationError: a conversation changed or vanished since the step loaded it.
        """

    async def commit(self) -> None:
        """Make everything written in this unit of work durable."""

    async def rollback(self) -> None:
        """Discard everything written in this unit of work."""


class UnitOfWorkFactory(Protocol):
    """Opens units of work, and says which of its errors are worth a retry."""

    def __call__(self) -> UnitOfWork: ...

    def is_conflict(self, error: BaseException) -> bool:
        """A clash with concurrent work (unique violation, deadlock, stale version): retrying may succeed."""

    def is_unavailable(self, error: BaseException) -> bool:
        """The database cannot be reached or refused the work; the update must stay pending."""
