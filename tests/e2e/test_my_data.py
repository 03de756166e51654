"""Personal data through the real bot process: kept out of groups, exported as a file, deleted on request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import TOKEN, Bot, SandboxClient, query

CHAT = 7100
GROUP = -7100
NOTE = "Please message me privately to continue your intake."


def download(sandbox: SandboxClient, file_id: str) -> bytes:
    """A file the bot sent, fetched the way a Telegram client would (``getFile``, then the file URL)."""
    info = sandbox.http.get(f"{sandbox.url}/bot{TOKEN}/getFile", params={"file_id": file_id}).json()["result"]
    return sandbox.http.get(f"{sandbox.url}/file/bot{TOKEN}/{info['file_path']}").content


def last_bot_message(sandbox: SandboxClient, chat_id: int, count: int) -> dict[str, Any]:
    sandbox.wait_for_reply(chat_id, count)
    message: dict[str, Any] = sandbox.bot_messages(chat_id)[-1]
    return message


def test_the_intake_stays_private_and_the_user_can_export_and_delete_their_data(
    bot: Bot, sandbox: SandboxClient, sqlite_path: Path
) -> None:
    bot.start()
    sandbox.say(CHAT, "/intake_start")
    sandbox.wait_for_reply(CHAT, 1)
    sandbox.say(CHAT, "Maria Ivanova")
    sandbox.wait_for_reply(CHAT, 2)

    sandbox.say(GROUP, "/intake_status", user_id=CHAT)
    note = last_bot_message(sandbox, GROUP, 1)
    assert note["text"].startswith(NOTE) and "Maria" not in note["text"]
    [[link]] = note["reply_markup"]["inline_keyboard"]
    assert link == {"text": "Continue in private chat", "url": "https://t.me/durabot_sandbox_bot?start=intake"}

    sandbox.say(CHAT, "/export_my_data")
    sandbox.wait_for_reply(CHAT, 4)  # the file, then where the intake stands
    [exported] = [m for m in sandbox.bot_messages(CHAT) if "document" in m["message"]]
    document = exported["message"]["document"]
    assert document["file_name"] == "my-data.json"
    data = json.loads(download(sandbox, document["file_id"]))
    [case] = data["cases"]
    assert case["intake_progress"]["answers"]["answers"] == {"full_name": "Maria Ivanova"}

    sandbox.say(CHAT, "/delete_my_data")
    sandbox.wait_for_reply(CHAT, 6)  # the question, then where the intake stands
    sandbox.press(CHAT, "Yes, delete")
    done = last_bot_message(sandbox, CHAT, 7)
    assert done["text"].startswith("Done. I deleted 1 unfinished conversation, 1 unfinished intake and the text")
    assert query(sqlite_path, "SELECT count(*) FROM cases") == [(0,)]
    assert query(sqlite_path, "SELECT count(*) FROM conversation_states") == [(0,)]
    texts = query(sqlite_path, f"SELECT event FROM telegram_updates WHERE user_id = {CHAT} AND event LIKE '%Maria%'")
    assert texts == []
