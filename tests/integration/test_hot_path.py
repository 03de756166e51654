"""On both databases an update of a quiet chat costs one transaction: stored, applied and marked done together."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from durabot.engine.events import Event
from durabot.storage.tables import TelegramUpdateRow
from tests.integration.conftest import Harness

CHAT = 4242


async def test_a_quiet_chats_update_is_stored_and_applied_in_one_transaction(harness: Harness) -> None:
    transactions: list[str] = []

    def began(_connection: Any) -> None:
        transactions.append("begin")

    event.listen(harness.database.engine.sync_engine, "begin", began)
    try:
        intake = await harness.engine.take_in([Event.message(1, CHAT, CHAT, "/addmachine")])
    finally:
        event.remove(harness.database.engine.sync_engine, "begin", began)
    assert (intake.new, intake.waiting) == (1, 0)
    assert transactions == ["begin"], "receive, apply and an empty look-up used to be three"
    [row] = await harness.rows(TelegramUpdateRow)
    assert row.outcome == "applied"
    assert (await harness.outbox_texts(CHAT))[0].startswith("Step 1 of 6")
