"""Faults a test asks for: the next calls of a method fail with a status or are delayed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from durabot.sandbox.errors import ApiError, error_for_status


@dataclass
class Fault:
    """The next ``count`` calls of ``method`` wait ``delay`` seconds, then fail with ``status`` if one is set.

    Attributes:
        method: Bot API method name, compared case-insensitively.
        count: Calls still to be affected.
        status: HTTP status to fail with (429, 500, …), or ``None`` to only delay.
        retry_after: For 429, the seconds the client is told to wait.
        delay: Seconds to hold the call before answering.
        description: Overrides Telegram's usual description for ``status``.
    """

    method: str
    count: int = 1
    status: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    description: str | None = None

    def error(self) -> ApiError | None:
        """The error this fault answers with, if it is not a pure delay."""
        if self.status is None:
            return None
        return error_for_status(self.status, self.description, self.retry_after)

    def to_json(self) -> dict[str, Any]:
        """The fault as the test API lists it."""
        return asdict(self)


class FaultPlan:
    """Faults waiting to strike, in the order they were added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` after the ones already waiting."""
        self._faults.append(fault)

    def clear(self) -> None:
        """Forget every fault."""
        self._faults.clear()

    def strike(self, method: str) -> Fault | None:
        """Use up one call of the first fault for ``method``, if any."""
        for fault in self._faults:
            if fault.method.lower() == method.lower():
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def to_json(self) -> list[dict[str, Any]]:
        """The waiting faults as the test API lists them."""
        return [fault.to_json() for fault in self._faults]
