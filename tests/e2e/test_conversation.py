"""A whole add-machine conversation through the real bot process and the sandbox, buttons included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.conftest import Bot, SandboxClient, query, wait_until

CHAT = 1001


def test_full_add_machine_conversation_with_buttons(bot: Bot, sandbox: SandboxClient, sqlite_path: Path) -> None:
    bot.start()
    sandbox.say(CHAT, "/start")
    assert "/addmachine" in sandbox.wait_for_reply(CHAT, 1)[0]

    sandbox.say(CHAT, "/addmachine")
    assert sandbox.wait_for_reply(CHAT, 2)[-1].startswith("Step 1 of 6 · Nickname")
    sandbox.say(CHAT, "Press 7")
    assert sandbox.wait_for_reply(CHAT, 3)[-1].startswith("Step 2 of 6 · Manufacturer")
    labels = [b["text"] for row in sandbox.bot_messages(CHAT)[-1]["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["Skip", "Cancel"]

    sandbox.press(CHAT, "Skip")
    assert sandbox.wait_for_reply(CHAT, 4)[-1].startswith("Step 3 of 6 · Model number")
    wait_until(lambda: len(sandbox.callback_answers()) == 1, "the button press to be answered")

    sandbox.http.post("/updates", json={"type": "sticker", "chat_id": CHAT, "user_id": CHAT})
    assert sandbox.wait_for_reply(CHAT, 5)[-1].startswith("I can't use a sticker here")
    sandbox.send_photo(CHAT)  # a nameplate photo, by contrast, is kept with the machine
    assert sandbox.wait_for_reply(CHAT, 6)[-1].startswith("📷 Photo kept with this machine.\n\nStep 3 of 6")
    for answer, expected in [("X-200", "Step 4 of 6"), ("SN-9", "Step 5 of 6"), ("Hall B", "Step 6 of 6")]:
        count = len(sandbox.bot_texts(CHAT)) + 1
        sandbox.say(CHAT, answer)
        assert sandbox.wait_for_reply(CHAT, count)[-1].startswith(expected)
    count = len(sandbox.bot_texts(CHAT)) + 1
    sandbox.say(CHAT, "Check belts monthly")
    assert sandbox.wait_for_reply(CHAT, count)[-1].startswith("Saved “Press 7” to your library.")

    rows = query(sqlite_path, "SELECT nickname, manufacturer, model_number, serial_number, location, notes FROM user_machines")
    assert rows == [("Press 7", None, "X-200", "SN-9", "Hall B", "Check belts monthly")]
    assert query(sqlite_path, "SELECT photo_file_id IS NOT NULL FROM user_machines") == [(1,)]

    sandbox.press(CHAT, "Cancel")  # a button from a finished conversation
    def both_answers() -> list[dict[str, Any]] | None:
        answers = sandbox.callback_answers()
        return answers if len(answers) == 2 else None

    answers = wait_until(both_answers, "the stale press's answer")
    assert answers[-1]["text"] == "This button has expired."
    assert query(sqlite_path, "SELECT count(*) FROM user_machines") == [(1,)]


def test_a_library_page_longer_than_telegram_allows_arrives_in_pieces(bot: Bot, sandbox: SandboxClient) -> None:
    bot.start()
    user, chats = 1100, [1101, 1102, 1103]  # one technician adding machines from three chats at once
    answers = ["/addmachine", "", "M" * 1000, "/skip", "/skip", "L" * 1000, "/skip"]
    for step, answer in enumerate(answers, start=1):
        for number, chat in enumerate(chats):
            sandbox.say(chat, answer or f"Machine {number}", user_id=user)
        for chat in chats:
            sandbox.wait_for_reply(chat, step)
    sandbox.say(1104, "/library", user_id=user)
    wait_until(lambda: len(sandbox.bot_texts(1104)) >= 2, "the library in several messages")
    pieces = sandbox.bot_texts(1104)
    assert all(len(piece) <= 4096 for piece in pieces)
    assert pieces[0].startswith("Your library — 3 machines, newest first:")
    joined = "\n".join(pieces)
    assert all(f"Machine {number} — " + "M" * 1000 in joined for number in range(3))
