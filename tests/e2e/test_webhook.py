"""Webhook mode: updates come in over HTTP with Telegram's secret header, and only with it."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.e2e.conftest import Bot, SandboxClient, query

CHAT = 4004
SECRET = "s3cret-Token_1"


def test_webhook_with_the_right_secret_works_and_a_wrong_one_stores_nothing(
    bot: Bot, sandbox: SandboxClient, sqlite_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    bot.start(
        wait="webhook.listening",
        WEBHOOK_URL=url,
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_LISTEN_HOST="127.0.0.1",
        WEBHOOK_LISTEN_PORT=str(port),
    )
    sandbox.say(CHAT, "/addmachine")  # the sandbox delivers it to the webhook with the secret
    assert sandbox.wait_for_reply(CHAT, 1)[0].startswith("Step 1 of 6")

    forged = {
        "update_id": 999_999,
        "message": {
            "message_id": 1, "date": 1_700_000_000, "text": "/addmachine",
            "chat": {"id": 5005, "type": "private"}, "from": {"id": 5005, "is_bot": False, "first_name": "M"},
        },
    }
    for headers in ({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {}):
        response = httpx.post(url, json=forged, headers=headers)
        assert response.status_code == 403
    assert query(sqlite_path, "SELECT count(*) FROM telegram_updates WHERE update_id = 999999") == [(0,)]

    response = httpx.post(url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert response.status_code == 200
    assert query(sqlite_path, "SELECT count(*) FROM telegram_updates WHERE update_id = 999999") == [(1,)]
