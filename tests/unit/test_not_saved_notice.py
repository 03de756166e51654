"""The best-effort "can't save right now": only in outage mode, once a minute per chat, and a failed send is shrugged off."""

from __future__ import annotations

from typing import Any, cast

from telegram import Bot

from durabot.engine.events import Event, IgnoredUpdate, Received
from durabot.journal.notice import NOT_SAVED, NotSavedNotice


class Sends:
    """Stands in for the Bot API client: records ``send_message``, or fails it."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[int, str]] = []
        self.fail = fail

    async def send_message(self, chat_id: int, text: str, **_: Any) -> None:
        if self.fail:
            raise ConnectionError("unreachable")
        self.sent.append((chat_id, text))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_nothing_is_said_unless_outage_mode_is_engaged() -> None:
    sends = Sends()
    notice = NotSavedNotice(cast(Bot, sends), engaged=lambda: False)
    await notice([Event.message(1, 10, 10, "hi")])
    assert sends.sent == []


async def test_each_chat_of_the_batch_is_told_once_a_minute_at_most() -> None:
    sends, clock = Sends(), Clock()
    notice = NotSavedNotice(cast(Bot, sends), engaged=lambda: True, clock=clock)
    batch: list[Received] = [Event.message(1, 10, 10, "a"), Event.message(2, 10, 10, "b"), Event.message(3, 11, 11, "c"), IgnoredUpdate(4, "bad")]
    await notice(batch)
    assert sorted(sends.sent) == [(10, NOT_SAVED), (11, NOT_SAVED)]
    clock.now = 59.0
    await notice(batch)
    assert len(sends.sent) == 2, "Telegram delivers the same batch again every few seconds: one notice is enough"
    clock.now = 60.0
    await notice(batch[:1])
    assert sends.sent[-1] == (10, NOT_SAVED) and len(sends.sent) == 3


async def test_a_notice_that_cannot_be_sent_is_given_up_without_an_error() -> None:
    notice = NotSavedNotice(cast(Bot, Sends(fail=True)), engaged=lambda: True)
    await notice([Event.message(1, 10, 10, "a")])  # no exception: the update itself is simply not confirmed
