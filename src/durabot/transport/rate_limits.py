"""Telegram's send limits as one relay keeps them: a rate overall and a rate per chat, each of which may be lifted."""

from __future__ import annotations

import collections
import contextlib
from contextlib import AbstractAsyncContextManager

from aiolimiter import AsyncLimiter

GROUP_MESSAGES_PER_MINUTE = 20
"""Telegram's limit for one group (groups have negative chat ids), applied whenever chats are limited at all."""

_UNLIMITED: AbstractAsyncContextManager[object] = contextlib.nullcontext()


def _limiter(per_second: float) -> AsyncLimiter:
    """A leaky bucket of ``per_second``, holding a burst of one second's worth (at least one send)."""
    burst = max(1.0, per_second)
    return AsyncLimiter(burst, burst / per_second)


class RateLimits:
    """Each send enters :attr:`overall` and, for messages to a chat, :meth:`chat`; both wait while over their rate.

    Args:
        overall_per_second: Sends per second in all; ``None`` or 0 for no limit.
        chat_per_second: Sends per second to one private chat (groups: 20 a minute); ``None`` or 0 for no limit.
        remembered_chats: How many chats' limiters are kept (the least recently used are forgotten).
    """

    def __init__(
        self, overall_per_second: float | None = 30, chat_per_second: float | None = 1, remembered_chats: int = 10_000
    ) -> None:
        self.overall: AbstractAsyncContextManager[object] = _limiter(overall_per_second) if overall_per_second else _UNLIMITED
        self._chat_per_second = chat_per_second or None
        self._chats: collections.OrderedDict[int, AsyncLimiter] = collections.OrderedDict()
        self._remembered = remembered_chats

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
