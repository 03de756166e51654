"""An observer that writes down what it is told, for tests of the parts that report to the observer seam."""

from __future__ import annotations

from typing import Any

from durabot.engine.runner import Applied
from durabot.observe import BaseObserver


class Recorder(BaseObserver):
    """Every report, in order, as ``(method, arguments…)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def updates_stored(self, new: int, waiting: int) -> None:
        self.calls.append(("updates_stored", new, waiting))

    def update_applied(self, applied: Applied) -> None:
        self.calls.append(("update_applied", applied.update_id, applied.outcome))

    def updates_ignored(self, count: int) -> None:
        self.calls.append(("updates_ignored", count))

    def message_sent(self, method: str) -> None:
        self.calls.append(("message_sent", method))

    def send_failed(self, method: str, gave_up: bool) -> None:
        self.calls.append(("send_failed", method, gave_up))

    def leadership_changed(self, polling: bool) -> None:
        self.calls.append(("leadership_changed", polling))

    def journal_changed(self, engaged: bool, depth: int) -> None:
        self.calls.append(("journal_changed", engaged, depth))

    def of(self, method: str) -> list[tuple[Any, ...]]:
        """The reports made to ``method``, without the method's name."""
        return [call[1:] for call in self.calls if call[0] == method]
