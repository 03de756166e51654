"""kill -9 at the worst moments: nothing lost, nothing applied twice, every prompt delivered."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Bot, SandboxClient, query, wait_until

CHAT = 2002
ANSWERS = ["Press 7", "Haas", "VF-2", "SN-1", "Hall B", "oil weekly"]
PROMPTS = [f"Step {n} of 6" for n in range(1, 7)]


def delivered_prompts(sandbox: SandboxClient) -> list[str]:
    return [text.split(" · ")[0] for text in sandbox.bot_texts(CHAT) if text.startswith("Step ")]


def test_kill_after_fetch_and_after_commit_loses_nothing(bot: Bot, sandbox: SandboxClient, sqlite_path: Path) -> None:
    # 1. Killed right after getUpdates returned a batch, before the batch reached the inbox.
    doomed = bot.start(DURABOT_FAILPOINTS="polling.after_fetch")
    sandbox.say(CHAT, "/addmachine")
    doomed.kill9_expected()
    assert query(sqlite_path, "SELECT count(*) FROM telegram_updates") == [(0,)]

    # 2. Killed between the commit of a step and the sending of its reply.
    doomed = bot.start(DURABOT_FAILPOINTS="engine.after_commit:2")
    assert sandbox.wait_for_reply(CHAT, 1)[0].startswith("Step 1 of 6")  # the update Telegram kept
    sandbox.say(CHAT, ANSWERS[0])
    doomed.kill9_expected()
    assert delivered_prompts(sandbox) == PROMPTS[:1], "the reply of the committed step was not sent yet"

    # 3. A clean start finishes the job: the pending reply goes out, and the conversation completes.
    bot.start()
    wait_until(lambda: delivered_prompts(sandbox) == PROMPTS[:2], "the reply held back by the crash")
    for index, answer in enumerate(ANSWERS[1:], start=2):
        sandbox.say(CHAT, answer)
        expected = index + 1
        wait_until(lambda: len(sandbox.bot_texts(CHAT)) >= expected, f"reply {expected}")
    assert sandbox.bot_texts(CHAT)[-1].startswith("Saved “Press 7”")
    assert delivered_prompts(sandbox) == PROMPTS, "every prompt delivered exactly once"

    rows = query(sqlite_path, "SELECT nickname, manufacturer, model_number, serial_number, location, notes FROM user_machines")
    assert rows == [tuple(ANSWERS)]
    applied = query(sqlite_path, "SELECT outcome, count(*) FROM telegram_updates GROUP BY outcome")
    assert applied == [("applied", 7)]


def test_a_redelivered_update_has_one_effect(bot: Bot, sandbox: SandboxClient, sqlite_path: Path) -> None:
    bot.start()
    sandbox.say(CHAT, "/addmachine")
    sandbox.wait_for_reply(CHAT, 1)
    update_id = sandbox.say(CHAT, "Press 8")
    sandbox.wait_for_reply(CHAT, 2)
    sandbox.redeliver(update_id)
    sandbox.say(CHAT, "/help")  # queued after the redelivery, so applied after it
    texts = sandbox.wait_for_reply(CHAT, 4)
    assert texts[2].startswith("/addmachine — add a machine")
    assert texts[3].startswith("You are still adding a machine to your library")
    assert "Step 2 of 6" in texts[3], "the redelivered answer was not applied a second time"
    assert len(sandbox.bot_texts(CHAT)) == 4
    assert query(sqlite_path, f"SELECT count(*) FROM telegram_updates WHERE update_id = {update_id}") == [(1,)]
    [(state,)] = query(sqlite_path, "SELECT state_data FROM conversation_states")
    assert '"Press 8"' in state
