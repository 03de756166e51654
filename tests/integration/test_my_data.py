"""/export_my_data and /delete_my_data on SQLite and PostgreSQL, with the real inbox and outbox."""

from __future__ import annotations

import json

from durabot.storage.tables import (
    CaseIntakeProgressRow,
    CaseRow,
    ConversationStateRow,
    ConversationTombstoneRow,
    OutboxMessageRow,
    TelegramUpdateRow,
)
from tests.integration.conftest import Chat, Harness
from tests.integration.intake_answers import ALL

OTHER_USER = 702


async def test_export_sends_a_json_document_of_the_users_data(chat: Chat, harness: Harness) -> None:
    await Chat(harness, OTHER_USER, OTHER_USER).say("/addmachine")
    for text in ("/addmachine", "Press 3", "Amada", "/skip", "/skip", "Hall B", "/skip", "/intake_start", "Maria"):
        await chat.say(text)
    await chat.say("/export_my_data")

    [row] = await harness.rows(OutboxMessageRow, OutboxMessageRow.method == "send_document")
    assert (row.chat_id, row.payload["filename"]) == (chat.chat_id, "my-data.json")
    data = json.loads(row.payload["content"])
    assert [(m["nickname"], m["location"]) for m in data["machines"]] == [("Press 3", "Hall B")]
    [case] = data["cases"]
    assert case["status"] == "draft" and case["intake_progress"]["answers"]["answers"] == {"full_name": "Maria"}
    assert [c["flow"] for c in data["conversations"]] == ["eb1a_intake"]


async def test_delete_removes_the_users_data_keeps_a_completed_intake_and_says_so(
    chat: Chat, harness: Harness
) -> None:
    other = Chat(harness, OTHER_USER, OTHER_USER)
    await other.say("/addmachine")
    await Chat(harness, -77, chat.user_id).say("/addmachine")
    harness.clock.advance(hours=25)
    await harness.engine.cleanup()  # a tombstone in the group chat
    await chat.say("/intake_start")
    for _, text in ALL:
        await chat.say(text)
    for text in ("/intake_start", "Maria", "/addmachine", "Press 3", "/skip", "/skip", "/skip", "/skip", "/skip"):
        await chat.say(text)
    await chat.say("/addmachine")

    await chat.say("/delete_my_data")
    [done] = await chat.press("Yes, delete")

    assert done.startswith("Done. I deleted 1 machine, 2 unfinished conversations, 1 unfinished intake and the text")
    assert "your completed intake (1 case) stays with the practice" in done
    assert await harness.machines(chat.user_id) == []
    assert await harness.rows(ConversationStateRow, ConversationStateRow.user_id == chat.user_id) == []
    assert [t.user_id for t in await harness.rows(ConversationTombstoneRow)] == [OTHER_USER]
    [kept] = await harness.rows(CaseRow)
    assert kept.status == "intake_complete"
    assert [p.case_id for p in await harness.rows(CaseIntakeProgressRow)] == [kept.case_id]

    mine = await harness.rows(TelegramUpdateRow, TelegramUpdateRow.user_id == chat.user_id)
    with_text = [row for row in mine if row.event is not None]
    assert len(with_text) == 1 and with_text[0].event["kind"] == "callback", "only the press being applied"
    outbox = await harness.rows(OutboxMessageRow, OutboxMessageRow.chat_id == chat.chat_id)
    assert [row.method for row in sorted(outbox, key=lambda r: r.id)] == ["answer_callback", "send_message"]

    theirs = await harness.rows(TelegramUpdateRow, TelegramUpdateRow.user_id == OTHER_USER)
    assert [row.event["text"] for row in theirs] == ["/addmachine"]
    assert await harness.outbox_texts(OTHER_USER) != []
