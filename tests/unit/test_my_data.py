"""Users own their data: /export_my_data sends all of it as a file, /delete_my_data deletes it after a confirm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

from durabot.clock import FakeClock
from durabot.domain.cases import CaseStatus, IntakeProgress
from durabot.engine.runner import Engine
from durabot.replies import Document, Reply
from durabot.testing import FakeUnitOfWorkFactory
from tests.integration.intake_answers import ALL
from tests.unit.driver import TTL, Chat, Turn

CONFIRM = (
    "Delete your data? This removes your equipment library, your unfinished conversations, any intake you "
    "have not completed, and the text of your messages to me and of my replies. A completed intake stays "
    "with the practice. This can't be undone."
)


async def complete_an_intake(chat: Chat) -> None:
    await chat.say("/intake_start")
    for _, text in ALL:
        turn = await chat.say(text)
    assert turn.text.startswith("Thank you — your EB-1A intake is complete.")


def button_data(reply: Reply, label: str) -> str:
    return next(button.data for row in reply.buttons for button in row if button.label == label)


def exported(turn: Turn) -> dict[str, Any]:
    [document] = [message for message in turn.outgoing if isinstance(message, Document)]
    assert document.filename == "my-data.json"
    data: dict[str, Any] = json.loads(document.content)
    return data


async def test_delete_my_data_asks_first_and_deletes_nothing_yet(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.add_machine("Press 3")
    turn = await chat.say("/delete_my_data")
    assert turn.text == CONFIRM
    assert list(turn.buttons) == ["Yes, delete", "Keep my data"]
    assert len(factory.data.machines) == 1


async def test_keep_my_data_deletes_nothing(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.add_machine("Press 3")
    await chat.say("/delete_my_data")
    assert (await chat.press("Keep my data")).texts == ["Nothing was deleted; your data is as it was."]
    assert len(factory.data.machines) == 1


async def test_yes_delete_removes_everything_but_a_completed_intake_and_says_so(
    chat: Chat, engine: Engine, factory: FakeUnitOfWorkFactory, clock: FakeClock, update_ids: Iterator[int]
) -> None:
    in_a_group = Chat(engine, factory, update_ids, chat_id=-42, user_id=chat.user_id)
    other_user = Chat(engine, factory, update_ids, chat_id=8, user_id=8)
    await in_a_group.say("/addmachine")
    clock.advance(TTL + timedelta(minutes=1))
    assert await engine.cleanup() == 1
    await complete_an_intake(chat)
    await chat.say("/intake_start")
    await chat.say("/intake_cancel")
    await chat.say("/intake_start")
    await chat.say("Maria Ivanova")
    await chat.add_machine("Press 3")
    await chat.add_machine("Press 4")
    await chat.say("/addmachine")
    await other_user.add_machine("Lathe 1")
    orphan = IntakeProgress(uuid4(), chat.user_id, "basic", "email", (), {}, clock(), clock())
    factory.data.progress[orphan.case_id] = orphan
    assert len(factory.data.tombstones) == 1

    confirm = (await chat.say("/delete_my_data")).replies[0]
    turn = await chat.press_data(button_data(confirm, "Yes, delete"))

    assert turn.texts == [
        "Done. I deleted 2 machines, 2 unfinished conversations, 2 unfinished intakes and the text of your "
        "messages to me and of my replies.\n\nKept: your completed intake (1 case) stays with the practice, "
        "which needs it for your case. Please ask the practice if you want it removed."
    ]
    assert [m.nickname for m in factory.data.machines] == ["Lathe 1"]
    assert [c.user_id for c in factory.data.conversations.values()] == []
    assert factory.data.tombstones == {}
    [kept] = factory.data.cases.values()
    assert kept.status is CaseStatus.INTAKE_COMPLETE
    assert list(factory.data.progress) == [kept.case_id]
    mine = [r for r in factory.data.inbox.values() if r.event is not None and r.event.user_id == chat.user_id]
    assert [r.event.kind.value for r in mine if r.event is not None] == ["callback"], "only the press being applied"
    assert [r.message for r in factory.data.outbox if r.chat_id == chat.chat_id] == turn.outgoing
    assert any(r.chat_id == other_user.chat_id for r in factory.data.outbox)


async def test_with_no_completed_intake_nothing_is_kept(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.say("/intake_start")
    confirm = (await chat.say("/delete_my_data")).replies[0]
    turn = await chat.press_data(button_data(confirm, "Yes, delete"))
    assert turn.text.endswith("Nothing else about you is kept.")
    assert factory.data.cases == {} and factory.data.progress == {}


async def test_a_confirmation_older_than_an_hour_deletes_nothing(
    chat: Chat, factory: FakeUnitOfWorkFactory, clock: FakeClock
) -> None:
    await chat.add_machine("Press 3")
    await chat.say("/delete_my_data")
    clock.advance(timedelta(hours=1, seconds=1))
    turn = await chat.press("Yes, delete")
    assert turn.texts == [
        "That confirmation has expired, and nothing was deleted. Send /delete_my_data to start again."
    ]
    assert len(factory.data.machines) == 1


async def test_a_forged_delete_button_is_treated_as_expired(chat: Chat, factory: FakeUnitOfWorkFactory) -> None:
    await chat.add_machine("Press 3")
    for data in ("mydata:delete", "mydata:delete:soon", "mydata:erase:1"):
        turn = await chat.press_data(data)
        assert [answer.text for answer in turn.callback_answers] == ["This button has expired."]
    assert len(factory.data.machines) == 1


async def test_export_sends_a_json_file_of_everything_stored_about_the_user(
    chat: Chat, engine: Engine, factory: FakeUnitOfWorkFactory, clock: FakeClock, update_ids: Iterator[int]
) -> None:
    await Chat(engine, factory, update_ids, chat_id=8, user_id=8).add_machine("Not mine")
    await chat.add_machine("Press 3", manufacturer="Amada", location="Hall B")
    await chat.say("/intake_start")
    await chat.say("Maria Ivanova")
    await chat.say("/addmachine")
    await chat.say("Drill 2")

    turn = await chat.say("/export_my_data")
    assert [reply.text.split(";")[0] for reply in turn.replies] == ["You are still adding a machine to your library"]
    data = exported(turn)

    assert data["user_id"] == chat.user_id
    assert data["exported_at"] == clock().isoformat()
    [machine] = data["machines"]
    assert (machine["nickname"], machine["manufacturer"], machine["location"]) == ("Press 3", "Amada", "Hall B")
    [case] = data["cases"]
    assert (case["case_type"], case["status"]) == ("EB1A", "draft")
    assert case["intake_progress"]["answers"]["answers"] == {"full_name": "Maria Ivanova"}
    assert data["intake_progress_without_case"] == []
    flows = {c["flow"]: c["answers"] for c in data["conversations"]}
    assert flows == {"eb1a_intake": {"full_name": "Maria Ivanova"}, "add_machine": {"nickname": "Drill 2"}}
    assert data["expired_conversations"] == []


async def test_export_lists_conversations_the_cleanup_removed_that_were_not_told_yet(
    chat: Chat, engine: Engine, factory: FakeUnitOfWorkFactory, clock: FakeClock, update_ids: Iterator[int]
) -> None:
    await Chat(engine, factory, update_ids, chat_id=-42, user_id=chat.user_id).say("/addmachine")
    clock.advance(TTL + timedelta(minutes=1))
    await engine.cleanup()
    data = exported(await chat.say("/export_my_data"))
    [gone] = data["expired_conversations"]
    assert (gone["flow"], gone["chat_id"]) == ("add_machine", -42)


async def test_export_of_a_new_user_is_empty_but_valid(chat: Chat) -> None:
    data = exported(await chat.say("/export_my_data"))
    assert {key: data[key] for key in ("machines", "cases", "conversations")} == {
        "machines": [],
        "cases": [],
        "conversations": [],
    }


async def test_help_lists_the_data_commands(chat: Chat) -> None:
    text = (await chat.say("/help")).text
    assert "/export_my_data — get a file of everything I keep about you" in text
    assert "/delete_my_data — delete your data (asks first)" in text


async def test_the_confirm_reminds_of_an_open_question(chat: Chat) -> None:
    await chat.say("/addmachine")
    turn = await chat.say("/delete_my_data")
    assert turn.texts[0] == CONFIRM
    assert [b.label for b in turn.replies[0].buttons[0]] == ["Yes, delete", "Keep my data"]
    assert turn.texts[1].startswith("You are still adding a machine to your library")
