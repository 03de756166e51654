"""A complete EB-1A intake through the real bot process and the sandbox, buttons included."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Bot, SandboxClient, query
from tests.integration.intake_answers import ALL

CHAT = 7007
BUTTONS = {"yes": "Yes", "no": "No", "doctorate": "Doctorate", "none": "None"}


def test_a_full_intake_ends_with_intake_complete_and_the_summary(
    bot: Bot, sandbox: SandboxClient, sqlite_path: Path
) -> None:
    bot.start()
    sandbox.say(CHAT, "/intake_start")
    assert sandbox.wait_for_reply(CHAT, 1)[0].startswith("Basic information (part 1 of 6) · Question 1 of 8")
    assert query(sqlite_path, "SELECT title, case_type, status FROM cases") == [("Intake Session", "EB1A", "draft")]

    replies = 1
    for key, text in ALL:
        label = BUTTONS.get(text)
        if label:
            sandbox.press(CHAT, label)
        else:
            sandbox.say(CHAT, text)
        replies += 1
        sandbox.wait_for_reply(CHAT, replies)
        if key == "degree_year":  # halfway: ask where we are, then carry on
            sandbox.say(CHAT, "/intake_status")
            sandbox.say(CHAT, "/intake_resume")
            replies += 2
            status, resumed = sandbox.wait_for_reply(CHAT, replies)[-2:]
            assert "Employment" in status and "%" in status
            assert resumed.startswith("Welcome back!")

    summary = sandbox.bot_texts(CHAT)[-1]
    assert summary.startswith("Thank you — your EB-1A intake is complete.")
    assert "You claim 4 of the 10 criteria" in summary and "at least 3" in summary
    assert query(sqlite_path, "SELECT status FROM cases") == [("intake_complete",)]
    [(block, step)] = query(sqlite_path, "SELECT current_block, current_step FROM case_intake_progress")
    assert (block, step) == (None, None)
