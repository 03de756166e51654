"""A step's writes as data: what it changes in conversations, domains, outbox and inbox, applied in one round."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from durabot.engine.conversation import Conversation
from durabot.replies import Outgoing

DomainStore = Literal["machines", "cases", "intake", "user_records"]
"""The :class:`~durabot.engine.ports.Domains` store a domain write goes to."""

FlowEventKind = Literal["started", "step", "completed", "cancelled", "expired"]


@dataclass(frozen=True)
class FlowEvent:
    """A conversation's milestone in a step, for the flow funnel: started, reached a step (``step`` names it), ended."""

    flow: str
    kind: FlowEventKind
    step: str = ""

_sequence = itertools.count(secrets.randbelow(1 << 10))


def new_conversation_id() -> int:
    """A fresh conversation id, made by the step rather than the database, so its buttons can carry it at once.

    Microseconds since the epoch shifted past ten bits of a per-process counter: ids grow with
    time (a newer conversation sorts after an older one, as the database's sequence did, and an
    id is never reused), stay clear of the small ids the sequence handed out before, fit a
    signed 64-bit column, and two processes meet on one only if they make it in the same
    microsecond with the same counter — which the insert's primary key turns into a retry.
    """
    return (time.time_ns() // 1000) << 10 | next(_sequence) & 0x3FF


@dataclass(frozen=True)
class ConversationWrite:
    """A conversation's change: inserted or updated to ``conversation``, or deleted when that is ``None``.

    ``expected_version`` is the version the step loaded (``None`` for a conversation this step
    created): an update finds it still there at that version or fails as stale; a delete
    removes it whatever its version.
    """

    id: int
    conversation: Conversation | None
    expected_version: int | None


@dataclass(frozen=True)
class DomainWrite:
    """One call on a domain store — e.g. ``("intake", "update", (progress,))`` — replayed as it was made."""

    store: DomainStore
    method: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Handled:
    """How the step's update ended: its stored inbox row marked, or — on the hot path — the update stored already handled.

    ``inbox_id`` is ``None`` when the update is not stored yet; ``raw`` is then its JSON (or ``None``).
    """

    outcome: str
    inbox_id: int | None
    raw: Any = None
    error: str | None = None


@dataclass
class WriteSet:
    """Everything one step writes, collected while the step decides and applied by the storage afterwards.

    Conversations are kept by id and coalesced: a conversation created and advanced in one step
    is one insert; created and finished in one step, nothing at all.
    """

    conversations: dict[int, ConversationWrite] = field(default_factory=dict)
    tombstones_taken: list[tuple[int, int]] = field(default_factory=list)
    """(user id, chat id) whose tombstones the step told of, and which go."""
    domain: list[DomainWrite] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)
    handled: Handled | None = None
    flow_events: list[FlowEvent] = field(default_factory=list)
    """What the step did to conversations, for metrics; not written anywhere."""

    def save(self, conversation: Conversation) -> Conversation:
        """Record ``conversation`` saved; returns it as stored (with its id and next version)."""
        created = conversation.id is None
        if conversation.id is None:
            conversation = replace(conversation, id=new_conversation_id())
        assert conversation.id is not None
        saved = replace(conversation, version=conversation.version + 1)
        earlier = self.conversations.get(conversation.id)
        expected = earlier.expected_version if earlier else (None if created else conversation.version)
        self.conversations[conversation.id] = ConversationWrite(conversation.id, saved, expected)
        return saved

    def delete(self, conversation_id: int, loaded_version: int | None) -> None:
        """Record the conversation deleted (``loaded_version``: as loaded, ``None`` if this step created it)."""
        earlier = self.conversations.get(conversation_id)
        expected = earlier.expected_version if earlier else loaded_version
        if expected is None:
            self.conversations.pop(conversation_id, None)  # created in this step: it never reaches the database
            return
        self.conversations[conversation_id] = ConversationWrite(conversation_id, None, expected)

    def call(self, store: DomainStore, method: str, *args: Any) -> None:
        """Record a call on a domain store."""
        self.domain.append(DomainWrite(store, method, args))
