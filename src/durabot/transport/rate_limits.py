"""Telegram's send limits as one relay keeps them: a rate overall and a rate per chat, each of which may be lifted.

The overall rate is this relay's share of the bot's (see :mod:`durabot.transport.rate_share`), so it
can change while the relay sends; a chat's rate never does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from aiolimiter import AsyncLimiter

from durabot.waiting import wait_for_any

GROUP_MESSAGES_PER_MINUTE = 20
"""Telegram's limit for one group (groups have negative chat ids), applied whenever chats are limited at all."""

_UNLIMITED: AbstractAsyncContextManager[object] = contextlib.nullcontext()


def _limiter(per_second: float) -> AsyncLimiter:
    """A leaky bucket of ``per_second``, holding a burst of one second's worth (at least one send)."""
    burst = max(1.0, per_second)
    return AsyncLimiter(burst, burst / per_second)


class AdjustableRate:
    """A leaky bucket whose rate may change while sends wait on it; it holds a burst of one second's worth (at least one).

    Entering it waits until one more send fits. Waiters take their turn in order; a new rate
    applies at once, to the waiter in hand too (what has drained so far drained at the old rate).

    Args:
        per_second: Sends per second; more than 0.
        now: Monotonic seconds (the clock asyncio's loop keeps, by default).
    """

    def __init__(self, per_second: float, now: Callable[[], float] = time.monotonic) -> None:
        if per_second <= 0:
            raise ValueError("a rate must be more than 0 a second")
        self._per_second = per_second
        self._now = now
        self._level = 0.0
        self._drained_at: float | None = None
        self._turn = asyncio.Lock()
        self._rerated = asyncio.Event()

    @property
    def per_second(self) -> float:
        """The rate in force."""
        return self._per_second

    @property
    def burst(self) -> float:
        """How many sends fit at once after a quiet second."""
        return max(1.0, self._per_second)

    def set_rate(self, per_second: float) -> None:
        """Change the rate from now on."""
        if per_second <= 0:
            raise ValueError("a rate must be more than 0 a second")
        self._drain()
        self._per_second = per_second
        self._rerated.set()

    def delay(self) -> float:
        """Seconds until one more send fits (0 if it fits now)."""
        self._drain()
        return max(0.0, (self._level + 1 - self.burst) / self._per_second)

    def take(self) -> None:
        """Count one send, whether or not it fitted (see :meth:`delay`)."""
        self._drain()
        self._level += 1

    async def __aenter__(self) -> None:
        async with self._turn:
            while (wait := self.delay()) > 0:
                self._rerated.clear()
                await wait_for_any(self._rerated, timeout=wait)
            self.take()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        return None

    def _drain(self) -> None:
        now = self._now()
        if self._drained_at is not None:
            self._level = max(0.0, self._level - (now - self._drained_at) * self._per_second)
        self._drained_at = now


class RateLimits:
    """Each send enters :attr:`overall` and, for messages to a chat, :meth:`chat`; both wait while over their rate.

    Args:
        overall_per_second: Sends per second in all; ``None`` or 0 for no limit. :meth:`set_overall` changes it.
        chat_per_second: Sends per second to one private chat (groups: 20 a minute); ``None`` or 0 for no limit.
        remembered_chats: How many chats' limiters are kept (the least recently used are forgotten).
    """

    def __init__(
        self, overall_per_second: float | None = 30, chat_per_second: float | None = 1, remembered_chats: int = 10_000
    ) -> None:
        self._overall: AdjustableRate | None = AdjustableRate(overall_per_second) if overall_per_second else None
        self._chat_per_second = chat_per_second or None
        self._chats: collections.OrderedDict[int, AsyncLimiter] = collections.OrderedDict()
        self._remembered = remembered_chats

    @property
    def overall(self) -> AbstractAsyncContextManager[object]:
        """The limiter every send enters."""
        return self._overall if self._overall is not None else _UNLIMITED

    @property
    def overall_per_second(self) -> float | None:
        """The overall rate in force; ``None`` for no limit."""
        return self._overall.per_second if self._overall is not None else None

    def set_overall(self, per_second: float | None) -> None:
        """Change the overall rate (``None`` or 0: no limit); sends already waiting follow the new rate."""
        if not per_second:
            self._overall = None
        elif self._overall is None:
            self._overall = AdjustableRate(per_second)
        else:
            self._overall.set_rate(per_second)

    def chat(self, chat_id: int) -> AbstractAsyncContextManager[object]:
        """The limiter of one chat."""
        if self._chat_per_second is None:
            return _UNLIMITED
        limiter = self._chats.pop(chat_id, None)
        if limiter is None:
            limiter = AsyncLimiter(GROUP_MESSAGES_PER_MINUTE, 60) if chat_id < 0 else _limiter(self._chat_per_second)
        self._chats[chat_id] = limiter
        while len(self._chats) > self._remembered:
            self._chats.popitem(last=False)
        return limiter
