"""The long-running service: migrate on start, apply inbox updates, and clean up expired conversations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from durabot.bootstrap import App
from durabot.storage.migrate import upgrade

log = structlog.get_logger("durabot.service")


async def _every(seconds: float, job: Callable[[], Awaitable[object]], name: str, stop: asyncio.Event) -> None:
    """Run ``job`` now and then every ``seconds`` until ``stop`` is set; a failed run is logged and retried."""
    while not stop.is_set():
        try:
            await job()
        except Exception:
            log.exception("service.task_failed", task=name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_service(app: App, stop: asyncio.Event) -> None:
    """Migrate, then apply pending updates and remove expired conversations until ``stop`` is set.

    The step in hand is always finished: tasks only look at ``stop`` between runs.
    """
    await upgrade(app.database)
    settings = app.settings
    log.info("service.started", database=app.database.dialect, ttl_hours=settings.state_ttl_hours)
    tasks = [
        asyncio.create_task(_every(settings.inbox_poll_seconds, app.engine.process_pending, "inbox", stop)),
        asyncio.create_task(_every(settings.cleanup_interval_seconds, app.engine.cleanup, "cleanup", stop)),
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("service.stopped")
