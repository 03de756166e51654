"""Waiting on events with a time limit, the one way every background loop pauses."""

from __future__ import annotations

import asyncio


async def wait_for_any(*events: asyncio.Event, timeout: float) -> None:
    """Return when one of ``events`` is set or ``timeout`` seconds have passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
