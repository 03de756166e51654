"""A nameplate photo through the real bot: offered, saved to the library with the machine, the file id kept."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Bot, SandboxClient, query, wait_until

CHAT = 8808


def test_a_photo_sent_to_the_bot_is_saved_to_the_library_with_its_machine(
    bot: Bot, sandbox: SandboxClient, sqlite_path: Path
) -> None:
    bot.start()
    sandbox.send_photo(CHAT)
    [offer] = sandbox.wait_for_reply(CHAT, 1)
    assert offer.startswith("Shall I save this machine to your library?")
    sandbox.press(CHAT, "Save to library")
    assert "Step 1 of 6 · Nickname" in sandbox.wait_for_reply(CHAT, 2)[-1]
    for replies, answer in enumerate(("Press 12", "Haas", "/skip", "/skip", "/skip", "/skip"), start=3):
        sandbox.say(CHAT, answer)
        sandbox.wait_for_reply(CHAT, replies)
    assert sandbox.bot_texts(CHAT)[-1].startswith("Saved “Press 12”")
    [(raw,)] = query(sqlite_path, "SELECT raw FROM telegram_updates ORDER BY id LIMIT 1")
    sent = json.loads(raw)["message"]["photo"][-1]["file_id"]
    assert query(sqlite_path, "SELECT nickname, manufacturer, photo_file_id FROM user_machines") == [("Press 12", "Haas", sent)]


def test_the_library_shows_a_machines_photo(bot: Bot, sandbox: SandboxClient) -> None:
    bot.start()
    sandbox.http.post("/updates", json={"type": "photo", "chat_id": CHAT, "user_id": CHAT, "caption": "/addmachine"})
    wait_until(lambda: len(sandbox.bot_messages(CHAT)) >= 1, "the first question")
    for count, answer in enumerate(("Press 12", "/skip", "/skip", "/skip", "/skip", "/skip"), start=2):
        sandbox.say(CHAT, answer)
        wait_until(lambda: len(sandbox.bot_messages(CHAT)) >= count, f"{count} messages")
    sandbox.say(CHAT, "/library")
    wait_until(lambda: len(sandbox.bot_messages(CHAT)) >= 9, "the library's photo and list")
    photo, listing = sandbox.bot_messages(CHAT)[-2:]
    assert photo["content"] == "photo" and photo["caption"] == "1. Press 12" and photo["image_url"]
    assert listing["text"].startswith("Your library — 1 machine") and "Press 12 📷" in listing["text"]
