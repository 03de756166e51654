"""Retention: what users wrote and what the bot sent leaves the inbox and outbox once its time is up."""

from __future__ import annotations

import json

from sqlalchemy import update

from durabot.engine.runner import INBOX_RETENTION, TEXT_RETENTION
from durabot.storage.tables import OutboxMessageRow, TelegramUpdateRow
from tests.integration.conftest import Chat, Harness

SECRET_ANSWER = "Boiler in flat 4B, key under the mat"


async def _mark_every_reply_sent(harness: Harness) -> None:
    async with harness.database.transaction() as connection:
        await connection.execute(update(OutboxMessageRow).values(status="sent", sent_at=harness.clock.now))


async def _stored_text(harness: Harness) -> str:
    inbox = await harness.rows(TelegramUpdateRow)
    outbox = await harness.rows(OutboxMessageRow)
    return json.dumps([[row.raw, row.event] for row in inbox] + [row.payload for row in outbox], ensure_ascii=False)


async def test_handled_updates_lose_their_text_and_sent_replies_go_after_the_retention_period(
    chat: Chat, harness: Harness
) -> None:
    await chat.say("/addmachine")
    await chat.say(SECRET_ANSWER)
    await _mark_every_reply_sent(harness)
    assert SECRET_ANSWER in await _stored_text(harness)

    harness.clock.advance(seconds=TEXT_RETENTION.total_seconds() - 60)
    await harness.engine.cleanup()
    assert SECRET_ANSWER in await _stored_text(harness), "kept until the retention period is over"

    harness.clock.advance(seconds=120)
    await harness.engine.cleanup()
    assert SECRET_ANSWER not in await _stored_text(harness)
    assert await harness.rows(OutboxMessageRow) == []
    assert len(await harness.rows(TelegramUpdateRow)) == 2, "identities stay, to recognise a late redelivery"

    harness.clock.advance(seconds=INBOX_RETENTION.total_seconds())
    await harness.engine.cleanup()
    assert await harness.rows(TelegramUpdateRow) == []


async def test_replies_not_sent_yet_are_never_pruned(chat: Chat, harness: Harness) -> None:
    await chat.say("/addmachine")
    harness.clock.advance(seconds=INBOX_RETENTION.total_seconds() * 2)
    await harness.engine.cleanup()
    [pending] = await harness.rows(OutboxMessageRow)
    assert pending.status == "pending"
