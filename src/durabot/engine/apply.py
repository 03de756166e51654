"""Applying a step's write-set to the stores of a unit of work, in a fixed order: the one place a step writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, cast

from durabot.engine.events import Event
from durabot.engine.ports import ConversationStore, Domains, Inbox, Outbox
from durabot.engine.writes import DomainWrite, WriteSet


async def apply_writes(
    writes: WriteSet,
    event: Event,
    now: datetime,
    conversations: ConversationStore,
    domains: Domains,
    inbox: Inbox,
    outbox: Outbox,
) -> None:
    """Conversations, tombstones, domain calls (in the order made), the step's replies, then its inbox outcome.

    Conversations come before domain calls, so a user's deletion of their data made in the same
    step removes what the step saved too.
    """
    for change in writes.conversations.values():
        await conversations.apply(change)
    for user_id, chat_id in writes.tombstones_taken:
        await conversations.delete_tombstones(user_id, chat_id)
    for call in writes.domain:
        await replay(call, domains)
    if writes.outgoing:
        await outbox.add(event.chat_id, writes.outgoing, event.update_id, now)
    handled = writes.handled
    if handled is None:
        return
    if handled.inbox_id is None:
        await inbox.record(event, now, handled.raw, handled.outcome, handled.error)
    else:
        await inbox.mark_done(handled.inbox_id, handled.outcome, now, handled.error)


async def replay(call: DomainWrite, domains: Domains) -> Any:
    """Make a recorded domain call on ``domains`` (the step's own store, or another one it is replayed into)."""
    method = cast(Callable[..., Awaitable[Any]], getattr(getattr(domains, call.store), call.method))
    return await method(*call.args)
