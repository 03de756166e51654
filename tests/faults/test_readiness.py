"""``/readyz`` of a real worker follows its PostgreSQL: not ready while it is down, ready again once it is back."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Bot, SandboxClient, wait_until
from tests.e2e.test_console import ADMIN, console_url
from tests.faults.conftest import Cluster

pytestmark = pytest.mark.faults


def test_readyz_fails_while_the_database_is_down_and_healthz_does_not(
    sandbox: SandboxClient, cluster: Cluster, tmp_path: Path
) -> None:
    bot = Bot(sandbox, cluster.url, tmp_path)
    try:
        worker = bot.start(**ADMIN)
        url = console_url(worker)
        assert httpx.get(f"{url}/readyz").status_code == 200
        cluster.crash()
        down = httpx.get(f"{url}/readyz", timeout=10)
        assert down.status_code == 503, down.text
        assert down.json()["ready"] is False and down.json()["database"] != "ok", down.text
        assert httpx.get(f"{url}/healthz").status_code == 200, "the process is alive all the same"
        cluster.start()
        wait_until(lambda: httpx.get(f"{url}/readyz", timeout=10).status_code == 200, "ready again", 60)
    finally:
        bot.stop_all()


def test_readyz_is_not_ready_until_the_database_is_reached_at_start(
    sandbox: SandboxClient, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.crash()
    bot = Bot(sandbox, cluster.url, tmp_path)
    try:
        worker = bot.start(wait="console.listening", **ADMIN)
        url = console_url(worker)
        assert httpx.get(f"{url}/healthz").status_code == 200
        waiting = httpx.get(f"{url}/readyz", timeout=10)
        assert waiting.status_code == 503 and waiting.json()["intake"] == "starting", waiting.text
        cluster.start()
        wait_until(lambda: httpx.get(f"{url}/readyz", timeout=10).status_code == 200, "ready once started", 60)
    finally:
        bot.stop_all()
