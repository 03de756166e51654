"""One seam for what the service does: updates stored and applied, messages sent or failed, leadership, outage mode.

The transport and the relay report to an :class:`Observer`; :class:`Wakeups` turns those reports
into the events the service's loops wait on, and metrics (the operator console) hang off the same
seam. Observers are called on the hot path: each method must be quick and must not block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import structlog

if TYPE_CHECKING:
    from durabot.engine.runner import Applied

log = structlog.get_logger("durabot.observe")


class Observer(Protocol):
    """What can be watched. Subclass :class:`BaseObserver` and override only what you watch."""

    def updates_stored(self, new: int, waiting: int) -> None:
        """Updates were committed: ``new`` of them were not known before, ``waiting`` still wait to be applied."""

    def update_applied(self, applied: Applied) -> None:
        """An update reached its outcome and committed, with the messages it queued."""

    def updates_ignored(self, count: int) -> None:
        """Updates were stored as ignored (malformed, of a kind the bot does not act on, for another bot)."""

    def message_sent(self, method: str) -> None:
        """An outbox row was delivered (``method`` is its :class:`~durabot.outbox.OutboxMethod`)."""

    def send_failed(self, method: str, gave_up: bool) -> None:
        """An outbox row could not be delivered: it will be tried again, or (``gave_up``) it was dead-lettered."""

    def leadership_changed(self, polling: bool) -> None:
        """This process began (``True``) or stopped (``False``) polling Telegram."""

    def journal_changed(self, engaged: bool, depth: int) -> None:
        """Outage mode began (``engaged``: steps go to the journal) or ended; ``depth``: updates the journal holds."""


class BaseObserver:
    """An observer that ignores everything; subclass it and override what you watch."""

    def updates_stored(self, new: int, waiting: int) -> None:
        return None

    def update_applied(self, applied: Applied) -> None:
        return None

    def updates_ignored(self, count: int) -> None:
        return None

    def message_sent(self, method: str) -> None:
        return None

    def send_failed(self, method: str, gave_up: bool) -> None:
        return None

    def leadership_changed(self, polling: bool) -> None:
        return None

    def journal_changed(self, engaged: bool, depth: int) -> None:
        return None


class Observers(BaseObserver):
    """Several observers as one; an observer that raises is logged and skipped, never the caller's problem."""

    def __init__(self, observers: Iterable[Observer] = ()) -> None:
        self._observers = list(observers)

    def add(self, observer: Observer) -> None:
        """Report to ``observer`` too, from now on."""
        self._observers.append(observer)

    def updates_stored(self, new: int, waiting: int) -> None:
        for observer in self._observers:
            try:
                observer.updates_stored(new, waiting)
            except Exception:
                _failed(observer, "updates_stored")

    def update_applied(self, applied: Applied) -> None:
        for observer in self._observers:
            try:
                observer.update_applied(applied)
            except Exception:
                _failed(observer, "update_applied")

    def updates_ignored(self, count: int) -> None:
        for observer in self._observers:
            try:
                observer.updates_ignored(count)
            except Exception:
                _failed(observer, "updates_ignored")

    def message_sent(self, method: str) -> None:
        for observer in self._observers:
            try:
                observer.message_sent(method)
            except Exception:
                _failed(observer, "message_sent")

    def send_failed(self, method: str, gave_up: bool) -> None:
        for observer in self._observers:
            try:
                observer.send_failed(method, gave_up)
            except Exception:
                _failed(observer, "send_failed")

    def leadership_changed(self, polling: bool) -> None:
        for observer in self._observers:
            try:
                observer.leadership_changed(polling)
            except Exception:
                _failed(observer, "leadership_changed")

    def journal_changed(self, engaged: bool, depth: int) -> None:
        for observer in self._observers:
            try:
                observer.journal_changed(engaged, depth)
            except Exception:
                _failed(observer, "journal_changed")


def _failed(observer: Observer, method: str) -> None:
    log.exception("observer.failed", observer=type(observer).__name__, method=method)


class Wakeups(BaseObserver):
    """The events the service's loops wait on, set by what this process stores and applies.

    Attributes:
        inbox: Set when updates were stored that still wait to be applied (the processing loop wakes).
        outbox: Set when an applied update queued messages (the relay wakes).
    """

    def __init__(self) -> None:
        self.inbox = asyncio.Event()
        self.outbox = asyncio.Event()

    def updates_stored(self, new: int, waiting: int) -> None:
        if waiting:
            self.inbox.set()

    def update_applied(self, applied: Applied) -> None:
        if applied.outgoing:
            self.outbox.set()
