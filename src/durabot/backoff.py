"""Growing, jittered pauses between retries, shared by every loop that waits for something to come back."""

from __future__ import annotations

import random


class Backoff:
    """Pauses of ``first``, ``2 × first``, … up to ``cap`` seconds, each scaled by a random 50–100 %.

    Args:
        first: The pause after the first failure, before jitter.
        cap: The longest pause, before jitter.
    """

    def __init__(self, first: float = 0.25, cap: float = 5.0) -> None:
        self._first = first
        self._cap = cap
        self.failures = 0

    def next(self) -> float:
        """Count one more failure and return how long to pause before the next try."""
        self.failures += 1
        ceiling = min(self._cap, self._first * 2.0 ** min(self.failures - 1, 32))
        return round(ceiling * random.uniform(0.5, 1.0), 3)

    def reset(self) -> None:
        """The last try succeeded: start again from ``first``."""
        self.failures = 0
