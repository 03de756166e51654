"""A nameplate photo starts or joins the add-machine flow and is kept with the machine; elsewhere it is refused kindly."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from durabot.bootstrap import build_engine
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.engine.dispatch import PHOTO_DECLINED, PHOTO_KEPT, PHOTO_OFFER
from durabot.engine.events import Event
from durabot.engine.runner import Engine
from durabot.replies import Photo, Reply
from durabot.testing import FakeUnitOfWorkFactory

CHAT = 42
PHOTO = "AgACAgQAAxkBAAIB-nameplate"


class Chat:
    """One user's chat with the engine on fakes: what they send, what the bot answers."""

    def __init__(self) -> None:
        self.factory = FakeUnitOfWorkFactory(FakeClock())
        self.engine: Engine = build_engine(self.factory, Settings(JOURNAL_PATH=""), self.factory.clock)
        self._ids: Iterator[int] = itertools.count(1)
        self.last: list[Reply] = []

    async def _handle(self, event: Event) -> list[Reply]:
        applied = await self.engine.handle(event)
        self.last = [m for result in applied for m in result.outgoing if isinstance(m, Reply)]
        return self.last

    async def say(self, text: str) -> list[Reply]:
        return await self._handle(Event.message(next(self._ids), CHAT, CHAT, text))

    async def photo(self, caption: str | None = None) -> list[Reply]:
        return await self._handle(Event.photo(next(self._ids), CHAT, CHAT, PHOTO, caption))

    async def press(self, label: str) -> list[Reply]:
        data = next(b.data for reply in self.last for row in reply.buttons for b in row if b.label == label)
        return await self._handle(Event.button(next(self._ids), CHAT, CHAT, data, f"cb{next(self._ids)}"))

    def machines(self) -> list[tuple[str, str | None]]:
        return [(m.nickname, m.photo_file_id) for m in self.factory.data.machines]


@pytest.fixture
def chat() -> Chat:
    return Chat()


async def test_a_photo_outside_any_flow_is_offered_and_saving_it_keeps_it_with_the_machine(chat: Chat) -> None:
    [offer] = await chat.photo()
    assert offer.text == PHOTO_OFFER
    assert [[b.label for b in row] for row in offer.buttons] == [["Save to library", "Not now"]]
    [question] = await chat.press("Save to library")
    assert question.text.startswith(f"{PHOTO_KEPT}\n\nStep 1 of 6 · Nickname")
    for answer in ("Press 12", "/skip", "/skip", "/skip", "/skip"):
        await chat.say(answer)
    [saved] = await chat.say("/skip")
    assert saved.text.startswith("Saved “Press 12”") and "• Photo kept" in saved.text
    assert chat.machines() == [("Press 12", PHOTO)]


async def test_not_now_lets_the_photo_go(chat: Chat) -> None:
    await chat.photo()
    assert [r.text for r in await chat.press("Not now")] == [PHOTO_DECLINED]
    [reply] = await chat.say("Press 12")
    assert reply.text.startswith("I'm not asking you anything right now.")
    assert chat.machines() == []


async def test_text_while_the_offer_stands_answers_nothing_and_asks_again(chat: Chat) -> None:
    await chat.photo()
    [again] = await chat.say("Press 12")
    assert again.text == f"Please choose first:\n\n{PHOTO_OFFER}"
    [question] = await chat.press("Save to library")
    assert "Step 1 of 6 · Nickname" in question.text, "the typed text was not taken as the nickname"


async def test_a_photo_captioned_addmachine_starts_the_flow_with_it(chat: Chat) -> None:
    [question] = await chat.photo(caption="/addmachine")
    assert question.text.startswith(f"{PHOTO_KEPT}\n\nStep 1 of 6 · Nickname")


async def test_a_photo_mid_flow_is_kept_and_the_question_in_hand_asked_again(chat: Chat) -> None:
    await chat.say("/addmachine")
    await chat.say("Press 12")
    [again] = await chat.photo()
    assert again.text.startswith(f"{PHOTO_KEPT}\n\nStep 2 of 6 · Manufacturer")
    [back] = await chat.say("/back")
    assert "Step 1 of 6 · Nickname" in back.text, "/back goes back over the nickname, not over the photo"
    for answer in ("Press 13", "Haas", "/skip", "/skip", "/skip", "/skip"):
        await chat.say(answer)
    assert chat.machines() == [("Press 13", PHOTO)]


async def test_a_photo_in_a_flow_that_takes_none_is_refused_and_the_question_asked_again(chat: Chat) -> None:
    await chat.say("/intake_start")
    [refused] = await chat.photo()
    assert refused.text.startswith("I can't use a photo here — please type your answer as text.")


async def test_the_library_sends_the_photos_of_its_page_before_the_list(chat: Chat) -> None:
    await chat.photo(caption="/addmachine")
    for answer in ("Press 12", "/skip", "/skip", "/skip", "/skip", "/skip"):
        await chat.say(answer)
    await chat.say("/addmachine")
    for answer in ("Lathe 2", "/skip", "/skip", "/skip", "/skip", "/skip"):
        await chat.say(answer)
    applied = await chat.engine.handle(Event.message(999, CHAT, CHAT, "/library"))
    outgoing = [m for result in applied for m in result.outgoing]
    assert outgoing[0] == Photo(PHOTO, "2. Press 12")
    assert isinstance(outgoing[1], Reply) and "2. Press 12 📷" in outgoing[1].text and "1. Lathe 2\n" in outgoing[1].text + "\n"
    assert len(outgoing) == 2, "a machine without a photo sends none"
