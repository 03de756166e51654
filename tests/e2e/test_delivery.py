"""Replies under Telegram's flood control and server errors: delivered once, after the wait."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import Bot, SandboxClient, query, wait_until

CHAT = 3003


def test_429_then_500_on_send_message_delivers_the_reply_once_after_the_wait(
    bot: Bot, sandbox: SandboxClient, sqlite_path: Path
) -> None:
    bot.start()
    sandbox.fault(method="sendMessage", status=429, retry_after=2, count=1)
    sandbox.fault(method="sendMessage", status=500, count=1)
    sandbox.say(CHAT, "/start")
    wait_until(lambda: len(sandbox.bot_texts(CHAT)) == 1, "the reply")

    calls = sandbox.calls("sendMessage")
    statuses = [call["status"] for call in calls]
    assert statuses == [429, 500, 200]
    assert calls[1]["at"] - calls[0]["at"] >= 2, "the retry did not wait for retry_after"
    assert len(sandbox.bot_texts(CHAT)) == 1
    def recorded() -> list[tuple[Any, ...]] | None:  # the reply shows before the bot records it as sent
        rows = query(sqlite_path, "SELECT status, attempts FROM outbox_messages")
        return rows if rows and rows[0][0] != "sending" else None

    assert wait_until(recorded, "the delivery to be recorded") == [("sent", 2)]


def test_a_blocked_chat_is_dead_lettered_with_its_reason(bot: Bot, sandbox: SandboxClient, sqlite_path: Path) -> None:
    bot.start()
    sandbox.fault(chat_id=CHAT, blocked=True)
    sandbox.say(CHAT, "/start")
    def dead_letters() -> list[tuple[Any, ...]] | None:
        rows = query(sqlite_path, "SELECT status, last_error FROM outbox_messages")
        return rows if rows and rows[0][0] == "dead" else None

    rows = wait_until(dead_letters, "the reply to be dead-lettered")
    assert "blocked" in rows[0][1]
