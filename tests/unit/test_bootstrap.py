"""The wiring: one observer seam reaches the engine, and the Telegram parts are built for polling or for a webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from durabot.bootstrap import App, build_app, build_telegram_parts
from durabot.config import Settings
from durabot.engine.events import Event
from durabot.storage.leader import LeaderLease
from durabot.storage.migrate import upgrade
from durabot.storage.outbox_queue import RELAY_CONNECTIONS
from durabot.transport.polling import Poller
from durabot.transport.telegram import make_bot
from tests.recorder import Recorder

TOKEN = "424242:wiring-token"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def app_for(tmp_path: Path, recorder: Recorder, **settings: Any) -> App:
    database_url = f"sqlite:///{tmp_path / 'wiring.sqlite3'}"
    return build_app(Settings(_env_file=None, database_url=database_url, **settings), observers=[recorder])


@pytest.fixture
async def polling_app(tmp_path: Path, recorder: Recorder) -> AsyncIterator[App]:
    app = app_for(tmp_path, recorder, telegram_bot_token=TOKEN)
    yield app
    await app.close()


async def test_what_the_engine_applies_reaches_every_observer_and_wakes_the_relay(
    polling_app: App, recorder: Recorder
) -> None:
    await upgrade(polling_app.database)
    await polling_app.engine.handle(Event.message(5, 701, 701, "/help"))
    assert recorder.of("update_applied") == [(5, "applied")]
    assert polling_app.wakeups.outbox.is_set() and not polling_app.wakeups.inbox.is_set()


async def test_polling_gets_a_lease_and_a_fresh_poller_per_term_and_no_webhook(polling_app: App) -> None:
    parts = build_telegram_parts(polling_app, make_bot(TOKEN, "http://127.0.0.1:9"))
    assert parts.webhook is None and isinstance(parts.lease, LeaderLease)
    assert parts.new_poller is not None
    first, second = parts.new_poller(), parts.new_poller()
    assert isinstance(first, Poller) and first is not second and first.offset is None


async def test_a_webhook_url_gets_a_webhook_server_on_the_configured_port_and_no_lease(
    tmp_path: Path, recorder: Recorder
) -> None:
    app = app_for(
        tmp_path, recorder, telegram_bot_token=TOKEN, webhook_url="https://bot.example/hook",
        webhook_secret="s3cret", webhook_listen_port=0,
    )
    try:
        parts = build_telegram_parts(app, make_bot(TOKEN, "http://127.0.0.1:9"))
        assert parts.webhook is not None and parts.webhook.path == "/hook" and parts.webhook.port == 0
        assert parts.lease is None and parts.new_poller is None
    finally:
        await app.close()


async def test_the_pool_keeps_a_connection_per_step_in_flight_plus_the_relay_and_housekeeping(
    tmp_path: Path, recorder: Recorder
) -> None:
    app = app_for(tmp_path, recorder, processing_concurrency=6)
    try:
        assert app.database.engine.pool.size() == 6 + RELAY_CONNECTIONS + 3  # type: ignore[attr-defined]
    finally:
        await app.close()
