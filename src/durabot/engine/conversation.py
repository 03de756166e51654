"""A user's conversation in one chat (flow, answers so far, expiry), and the tombstone left once it expired."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from durabot.flows.model import Answers, Flow

TOMBSTONE_RETENTION = timedelta(days=30)
"""How long the cleanup keeps a tombstone for the user's next message to find."""


@dataclass(frozen=True)
class Conversation:
    """A stored conversation.

    ``id`` is ``None`` until first saved; ``version`` counts the saved steps and is
    embedded in button data so a button from an earlier step is recognised as stale.
    """

    user_id: int
    chat_id: int
    flow_name: str
    flow_version: int
    answers: Answers
    started_at: datetime
    updated_at: datetime
    expires_at: datetime
    version: int = 0
    id: int | None = None
    current_step: str | None = None

    @classmethod
    def start(cls, flow: Flow, user_id: int, chat_id: int, now: datetime, ttl: timedelta) -> Conversation:
        """A new, unsaved conversation at the flow's first step."""
        return cls(user_id, chat_id, flow.name, flow.version, Answers(), now, now, now + ttl)

    def is_expired(self, now: datetime) -> bool:
        """Whether the conversation has gone untouched past its expiry time."""
        return self.expires_at <= now

    def advanced(self, flow: Flow, answers: Answers, now: datetime, ttl: timedelta) -> Conversation:
        """This conversation after a step: new answers, the derived current step, expiry moved on."""
        step = flow.current_step(answers)
        return replace(
            self,
            answers=answers,
            flow_version=flow.version,
            updated_at=now,
            expires_at=now + ttl,
            current_step=f"{flow.name}:{step.key}" if step else None,
        )


@dataclass(frozen=True)
class Tombstone:
    """What the periodic cleanup leaves of an expired conversation, until the user's next message is told of it."""

    user_id: int
    chat_id: int
    flow_name: str
    expired_at: datetime
    created_at: datetime
