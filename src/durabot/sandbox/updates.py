"""A bot's queue of updates: numbered, kept until confirmed, and waited for by long polls and webhooks."""

from __future__ import annotations

import asyncio
import copy
import secrets
from dataclasses import dataclass
from typing import Any

LOWEST_FIRST_UPDATE_ID = 2**20
ROOM_FOR_UPDATES = 2**24
"""How many updates one run of the sandbox can number before its ids leave the 31-bit range."""


def fresh_first_update_id() -> int:
    """A first ``update_id`` for a new run, random in a wide 31-bit range, so a restarted sandbox doesn't reuse ids.

    Two runs overlap only if their random starts fall within the number of updates they made of
    each other: for runs of ten thousand updates, about one restart in a hundred thousand.
    """
    return LOWEST_FIRST_UPDATE_ID + secrets.randbelow(2**31 - ROOM_FOR_UPDATES - LOWEST_FIRST_UPDATE_ID)


def update_kind(update: dict[str, Any]) -> str | None:
    """Which kind of update this is ("message", "callback_query", …), as ``allowed_updates`` names it."""
    return next((key for key in update if key != "update_id"), None)


@dataclass
class PendingUpdate:
    """An update Telegram still holds for the bot.

    Attributes:
        update: The update as sent, ``update_id`` included.
        redelivered: Queued again on purpose; the next ``getUpdates`` returns it even below its offset.
    """

    update: dict[str, Any]
    redelivered: bool = False

    @property
    def update_id(self) -> int:
        """The update's id."""
        return int(self.update["update_id"])


class UpdateQueue:
    """Updates in ``update_id`` order, dropped only once the bot confirms them, as Telegram does."""

    def __init__(self, first_update_id: int | None = None) -> None:
        """Number updates from ``first_update_id``, or from :func:`fresh_first_update_id` when not given."""
        self._next_id = fresh_first_update_id() if first_update_id is None else first_update_id
        self._pending: list[PendingUpdate] = []
        self._history: dict[int, dict[str, Any]] = {}
        self._changed = asyncio.Event()
        self.closed = False

    @property
    def changed(self) -> asyncio.Event:
        """Set at the next change; take it *before* looking at the queue, then wait on it."""
        return self._changed

    def notify(self) -> None:
        """Wake everyone waiting for a change (new updates, a webhook set or removed, shutdown)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        """End every wait now; used when the sandbox stops."""
        self.closed = True
        self.notify()

    def push(self, body: dict[str, Any]) -> dict[str, Any]:
        """Number ``body`` with the next ``update_id``, queue it and return the update."""
        update = {"update_id": self._next_id, **copy.deepcopy(body)}
        self._next_id += 1
        self._history[update["update_id"]] = update
        self._pending.append(PendingUpdate(update))
        self.notify()
        return copy.deepcopy(update)

    def redeliver(self, update_id: int) -> dict[str, Any]:
        """Queue an earlier update again with the same ``update_id``, even if it was confirmed.

        Raises:
            KeyError: no update with that id was ever queued.
        """
        update = self._history[update_id]
        for pending in self._pending:
            if pending.update_id == update_id:
                pending.redelivered = True
                break
        else:
            self._pending.append(PendingUpdate(copy.deepcopy(update), redelivered=True))
            self._pending.sort(key=lambda entry: entry.update_id)
        self.notify()
        return copy.deepcopy(update)

    def confirm_below(self, offset: int) -> None:
        """Drop every update with ``update_id < offset`` (what ``getUpdates(offset)`` means)."""
        self._pending = [p for p in self._pending if p.update_id >= offset or p.redelivered]

    def keep_last(self, count: int) -> None:
        """Drop all but the newest ``count`` updates (a negative ``getUpdates`` offset)."""
        self._pending = self._pending[-count:] if count else []

    def confirm(self, update_id: int) -> None:
        """Drop one update (a webhook answered 2xx for it)."""
        self._pending = [p for p in self._pending if p.update_id != update_id]

    def drop_all(self) -> None:
        """Forget every pending update (``drop_pending_updates``)."""
        self._pending.clear()
        self.notify()

    def reset(self) -> None:
        """Forget pending updates and history; ids keep growing so a running bot never sees one reused."""
        self._pending.clear()
        self._history.clear()
        self.notify()

    def take(self, offset: int | None, limit: int, allowed: list[str] | None) -> list[dict[str, Any]]:
        """The first ``limit`` pending updates from ``offset`` on; kinds not ``allowed`` are dropped."""
        if allowed:
            self._pending = [p for p in self._pending if update_kind(p.update) in allowed]
        chosen = [p for p in self._pending if offset is None or p.update_id >= offset or p.redelivered][:limit]
        for pending in chosen:
            pending.redelivered = False
        return [copy.deepcopy(p.update) for p in chosen]

    def first(self) -> dict[str, Any] | None:
        """The oldest pending update, for webhook delivery."""
        return copy.deepcopy(self._pending[0].update) if self._pending else None

    def pending(self) -> list[dict[str, Any]]:
        """Every update not yet confirmed, oldest first."""
        return [copy.deepcopy(p.update) for p in self._pending]
