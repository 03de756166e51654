"""The relay sends files (``sendDocument``) and link buttons to a real Bot API server (the sandbox)."""

from __future__ import annotations

import asyncio
import json

from durabot.replies import Button, Document, Reply
from durabot.storage.outbox_queue import SqlAlchemyOutboxQueue
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWorkFactory
from durabot.transport.relay import OutboxRelay
from durabot.clock import FakeClock
from tests.conftest import ScratchDatabase
from tests.integration.relay_rig import relay_rig

CHAT = 4343
CONTENT = json.dumps({"machines": [{"nickname": "Прес 3 ß"}]}, ensure_ascii=False, indent=2)


async def test_a_document_and_a_link_button_arrive_as_sent(test_db: ScratchDatabase, clock: FakeClock) -> None:
    database = test_db.open()
    try:
        link = Reply("Go on in private.", ((Button.link("Continue in private chat", "https://t.me/a_bot?start=x"),),))
        async with SqlAlchemyUnitOfWorkFactory(database, clock)() as uow:
            await uow.outbox.add(CHAT, [Document("my-data.json", CONTENT, "Your data"), link], None, clock())
            await uow.commit()
        async with relay_rig() as rig:
            relay = OutboxRelay(SqlAlchemyOutboxQueue(database, clock), rig.sender, clock)
            for _ in range(2):
                assert await asyncio.wait_for(relay.relay_once(), 60) == 1
            sent_file, sent_link = [m["message"] for m in await rig.sandbox.bot_messages(CHAT)]

            document = sent_file["document"]
            assert (document["file_name"], sent_file["caption"]) == ("my-data.json", "Your data")
            downloaded = await (await rig.bot.get_file(document["file_id"])).download_as_bytearray()
            assert downloaded.decode() == CONTENT

            [[button]] = sent_link["reply_markup"]["inline_keyboard"]
            assert button == {"text": "Continue in private chat", "url": "https://t.me/a_bot?start=x"}
    finally:
        await database.dispose()
