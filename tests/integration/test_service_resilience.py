"""The service at start-up and when a background task dies: wait for a database that is down, stop for good on the rest."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
import structlog

from durabot.bootstrap import build_app
from durabot.config import Settings
from durabot.service import BackgroundTaskError, Service
from tests.conftest import pg_url, require_postgres


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/durabot"


async def test_start_up_waits_for_an_unreachable_database_warning_on_each_attempt(tmp_path: Path) -> None:
    app = build_app(Settings(database_url=refused_url(), sandbox_port=0))
    stop = asyncio.Event()
    try:
        with structlog.testing.capture_logs() as logs:
            running = asyncio.create_task(Service(app, announce=lambda line: None).run(stop))

            def attempts() -> list[MutableMapping[str, Any]]:
                return [entry for entry in logs if entry["event"] == "service.database_unavailable"]

            deadline = asyncio.get_running_loop().time() + 60  # a hang guard
            while len(attempts()) < 3:
                assert not running.done(), running
                assert asyncio.get_running_loop().time() < deadline, logs
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(running, 30)
        assert [entry["attempt"] for entry in attempts()][:3] == [1, 2, 3]
        assert {entry["log_level"] for entry in attempts()} == {"warning"}
        assert all(float(str(entry["retry_in"])) > 0 for entry in attempts())
        assert "Connect call failed" in str(attempts()[0]["error"]) or "refused" in str(attempts()[0]["error"]).lower()
    finally:
        await app.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("make_url", "expected"),
    [
        (lambda url: url.rsplit("/", 1)[0] + "/durabot_no_such_database", asyncpg.exceptions.InvalidCatalogNameError),
        (lambda url: url.replace("postgres@", "durabot_no_such_role@", 1), asyncpg.exceptions.InvalidAuthorizationSpecificationError),
    ],
    ids=["unknown database", "unknown role"],
)
async def test_start_up_stops_at_once_on_a_database_that_can_never_work(
    make_url: Callable[[str], str], expected: type[Exception]
) -> None:
    require_postgres()
    app = build_app(Settings(database_url=make_url(pg_url()), sandbox_port=0))
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(expected):
            await asyncio.wait_for(Service(app, announce=lambda line: None).run(asyncio.Event()), 30)
        assert not [entry for entry in logs if entry["event"] == "service.database_unavailable"]
    finally:
        await app.close()


class ProcessingDies(Service):
    """A service whose processing task fails in a way nothing inside it handles."""

    async def _process(self, stop: asyncio.Event) -> None:
        raise RuntimeError("processing fell over")


async def test_a_background_task_that_dies_stops_the_whole_service_with_its_reason(tmp_path: Path) -> None:
    app = build_app(Settings(database_url=f"sqlite:///{tmp_path / 'dies.sqlite3'}", sandbox_port=0))
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(BackgroundTaskError) as raised:
            await asyncio.wait_for(ProcessingDies(app, announce=lambda line: None).run(asyncio.Event()), 60)
        assert "processing" in str(raised.value) and "processing fell over" in str(raised.value)
        assert isinstance(raised.value.__cause__, RuntimeError)
        [died] = [entry for entry in logs if entry["event"] == "service.task_died"]
        assert (died["task"], died["log_level"]) == ("processing", "error")
        assert [entry["event"] for entry in logs].index("service.stopped") > [entry["event"] for entry in logs].index("service.task_died")
    finally:
        await app.close()
