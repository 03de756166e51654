"""The relay on the fakes: what it sends, how it retries, when it gives up — no network, no database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from durabot.clock import FakeClock
from durabot.engine.runner import Applied
from durabot.observe import Wakeups
from durabot.outbox import OutboxStatus, decode, encode
from durabot.replies import Button, CallbackAnswer, Document, Photo, Reply
from durabot.testing import FakeSender, InMemoryOutboxQueue, QueuedMessage
from durabot.transport.rate_limits import RateLimits
from durabot.transport.relay import MAX_ATTEMPTS, OutboxRelay
from durabot.transport.sender import FloodControlError, PermanentSendError, TransientSendError
from durabot.transport.telegram import MAX_MESSAGE_LENGTH
from tests.recorder import Recorder

CHAT, OTHER_CHAT = 501, 502


@pytest.fixture
def queue(clock: FakeClock) -> InMemoryOutboxQueue:
    return InMemoryOutboxQueue(clock)


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def relay(queue: InMemoryOutboxQueue, sender: FakeSender, clock: FakeClock) -> OutboxRelay:
    return OutboxRelay(queue, sender, clock, limits=RateLimits(None, None), quick_retries=3, quick_retry_pause=0)


def row(queue: InMemoryOutboxQueue, item_id: int) -> QueuedMessage:
    return queue.rows[item_id]


async def test_a_reply_is_sent_with_its_buttons_and_recorded_as_sent(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    buttons = ((Button("Skip", "f:1:s"), Button.link("Docs", "https://example.org/")),)
    [item_id] = queue.put(CHAT, Reply("Step 1 of 6 · Nickname", buttons))
    assert await relay.relay_once() == 1
    [sent] = sender.sent
    assert (sent.call, sent.chat_id, sent.text, sent.buttons) == ("send_text", CHAT, "Step 1 of 6 · Nickname", buttons)
    assert row(queue, item_id).status == OutboxStatus.SENT
    assert await relay.relay_once() == 0, "nothing is sent twice"


async def test_a_chats_replies_go_out_one_claim_after_another_in_order(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    queue.put(CHAT, Reply("first"), Reply("second"))
    queue.put(OTHER_CHAT, Reply("other"))
    assert await relay.relay_once() == 2
    assert await relay.relay_once() == 1
    assert sender.texts(CHAT) == ["first", "second"]
    assert sender.texts(OTHER_CHAT) == ["other"]


@pytest.mark.parametrize(
    "error", [TransientSendError("NetworkError: Bad Gateway"), TransientSendError("TimedOut: Timed out")]
)
async def test_a_5xx_or_network_error_is_retried_at_once_and_the_reply_sent_once(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender, error: TransientSendError
) -> None:
    [item_id] = queue.put(CHAT, Reply("hello"))
    sender.fail(error, error)
    assert await relay.relay_once() == 1
    assert sender.calls == 3 and sender.texts() == ["hello"]
    assert (row(queue, item_id).status, row(queue, item_id).attempts) == (OutboxStatus.SENT, 1)


async def test_a_reply_still_failing_after_the_quick_retries_is_tried_again_later_and_holds_back_its_chat(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender, clock: FakeClock
) -> None:
    first, _second = queue.put(CHAT, Reply("first"), Reply("second"))
    sender.fail(*[TransientSendError("NetworkError: Bad Gateway")] * 3)
    assert await relay.relay_once() == 1
    waiting = row(queue, first)
    assert (waiting.status, waiting.last_error) == (OutboxStatus.PENDING, "NetworkError: Bad Gateway")
    assert waiting.next_attempt_at == clock() + timedelta(seconds=2)
    assert await relay.relay_once() == 0, "the chat's next reply waits for the one being retried"
    clock.advance(seconds=2)
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 1
    assert sender.texts() == ["first", "second"] and row(queue, first).attempts == 2


async def test_a_reply_that_keeps_failing_is_dead_lettered_after_the_last_attempt(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    [item_id] = queue.put(CHAT, Reply("hello"))
    row(queue, item_id).attempts = MAX_ATTEMPTS - 1
    sender.fail(*[TransientSendError("NetworkError: Bad Gateway")] * 3)
    await relay.relay_once()
    assert (row(queue, item_id).status, row(queue, item_id).last_error) == (OutboxStatus.DEAD, "NetworkError: Bad Gateway")


async def test_a_429_waits_exactly_retry_after_before_the_reply_is_sent_again(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender, clock: FakeClock
) -> None:
    [item_id] = queue.put(CHAT, Reply("hello"))
    sender.fail(FloodControlError(timedelta(seconds=7), "Flood control exceeded. Retry in 7 seconds"))
    assert await relay.relay_once() == 1
    assert sender.calls == 1, "flood control is not retried at once"
    assert row(queue, item_id).next_attempt_at == clock() + timedelta(seconds=7)
    clock.advance(seconds=6.9)
    assert await relay.relay_once() == 0
    clock.advance(seconds=0.1)
    assert await relay.relay_once() == 1
    assert sender.texts() == ["hello"] and row(queue, item_id).status == OutboxStatus.SENT


@pytest.mark.parametrize(
    "reason", ["BadRequest: Message text is empty", "Forbidden: Forbidden: bot was blocked by the user"]
)
async def test_a_400_or_403_is_dead_lettered_with_its_reason_and_the_chat_moves_on(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender, reason: str
) -> None:
    rejected, _next = queue.put(CHAT, Reply("rejected"), Reply("next"))
    sender.fail(PermanentSendError(reason))
    assert await relay.relay_once() == 1
    assert sender.calls == 1, "a permanent error is not retried"
    assert (row(queue, rejected).status, row(queue, rejected).last_error) == (OutboxStatus.DEAD, reason)
    assert await relay.relay_once() == 1
    assert sender.texts() == ["next"]


async def test_a_blocked_chat_does_not_hold_back_other_chats(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    [blocked] = queue.put(CHAT, Reply("to the blocked chat"))
    queue.put(OTHER_CHAT, Reply("to the other chat"))
    sender.block(CHAT)
    assert await relay.relay_once() == 2
    assert row(queue, blocked).status == OutboxStatus.DEAD and "blocked" in (row(queue, blocked).last_error or "")
    assert sender.texts() == ["to the other chat"]


async def test_a_long_reply_is_split_with_its_buttons_under_the_last_piece(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    paragraphs = ["a" * 3000, "b" * 3000, "c" * 3000]  # two never fit in one message
    buttons = ((Button("More", "f:1:m"),),)
    queue.put(CHAT, Reply("\n".join(paragraphs), buttons))
    assert await relay.relay_once() == 1
    assert sender.texts() == paragraphs
    assert all(len(text) <= MAX_MESSAGE_LENGTH for text in sender.texts())
    assert [message.buttons for message in sender.sent] == [(), (), buttons]


async def test_a_split_reply_interrupted_by_a_network_error_resumes_without_repeating_a_piece(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    queue.put(CHAT, Reply("a" * 3000 + "\n" + "b" * 3000))
    sender.fail(None, TransientSendError("NetworkError: Connection reset"))  # the second piece fails once
    assert await relay.relay_once() == 1
    assert sender.calls == 3
    assert sender.texts() == ["a" * 3000, "b" * 3000]


async def test_a_document_is_sent_as_a_file_with_its_caption(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    document = Document("my-data.json", '{"machines": []}', "Your data")
    [item_id] = queue.put(CHAT, document)
    assert await relay.relay_once() == 1
    [sent] = sender.sent
    assert (sent.call, sent.chat_id, sent.document) == ("send_document", CHAT, document)
    assert row(queue, item_id).status == OutboxStatus.SENT


async def test_a_photo_is_sent_again_by_its_file_id_with_its_caption(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    photo = Photo("AgACAgQAAx-kept-by-telegram", "1. Press 12")
    [item_id] = queue.put(CHAT, photo)
    assert await relay.relay_once() == 1
    [sent] = sender.sent
    assert (sent.call, sent.chat_id, sent.photo) == ("send_photo", CHAT, photo)
    assert row(queue, item_id).status == OutboxStatus.SENT
    assert decode(*encode(photo)) == photo, "stored and read back as it was"


async def test_a_callback_answer_acknowledges_the_button_with_its_notice(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    answer = CallbackAnswer("cb-42", "That button has expired.")
    queue.put(CHAT, answer, Reply("Step 2 of 6 · Manufacturer"))
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 1
    assert [(m.call, m.answer) for m in sender.sent] == [("answer_callback", answer), ("send_text", None)]


async def test_a_row_no_message_can_be_read_from_is_dead_lettered_without_a_call(
    relay: OutboxRelay, queue: InMemoryOutboxQueue, sender: FakeSender
) -> None:
    [item_id] = queue.put(CHAT, Reply("hello"))
    row(queue, item_id).method = "send_pigeon"
    assert await relay.relay_once() == 1
    assert sender.calls == 0
    assert row(queue, item_id).status == OutboxStatus.DEAD
    assert "unknown outbox method 'send_pigeon'" in (row(queue, item_id).last_error or "")


async def test_the_observer_hears_each_delivery_each_retry_and_each_dead_letter(
    queue: InMemoryOutboxQueue, sender: FakeSender, clock: FakeClock
) -> None:
    recorder = Recorder()
    relay = OutboxRelay(queue, sender, clock, limits=RateLimits(None, None), quick_retry_pause=0, observer=recorder)
    queue.put(CHAT, Reply("flooded"), Reply("rejected"))
    queue.put(OTHER_CHAT, CallbackAnswer("cb-1", None))
    sender.fail(FloodControlError(timedelta(seconds=1), "Flood control exceeded. Retry in 1 seconds"))
    assert await relay.relay_once() == 2
    clock.advance(seconds=1)
    sender.fail(None, PermanentSendError("BadRequest: Message text is empty"))
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 1
    assert sorted(recorder.calls) == [
        ("message_sent", "answer_callback"),
        ("message_sent", "send_message"),
        ("send_failed", "send_message", False),
        ("send_failed", "send_message", True),
    ]


async def test_run_wakes_when_the_wakeups_say_replies_were_committed_and_returns_once_stopped(
    queue: InMemoryOutboxQueue, sender: FakeSender, clock: FakeClock
) -> None:
    wakeups = Wakeups()
    relay = OutboxRelay(queue, sender, clock, limits=RateLimits(None, None), wakeups=wakeups)
    running = asyncio.create_task(relay.run(idle_seconds=3600))  # without a wakeup it would sleep for an hour
    async with asyncio.timeout(10):  # a hang guard
        await asyncio.sleep(0.05)  # the relay found nothing and waits
        queue.put(CHAT, Reply("hello"))
        wakeups.update_applied(Applied(1, "applied", (Reply("hello"),)))
        while sender.texts() != ["hello"]:
            await asyncio.sleep(0.01)
        relay.stop()
        await running
