"""A restarted sandbox: fresh update ids, and a new epoch so the chat page knows earlier messages are gone."""

from __future__ import annotations

import aiohttp

from durabot.sandbox import Sandbox, SandboxClient
from durabot.sandbox.updates import LOWEST_FIRST_UPDATE_ID, ROOM_FOR_UPDATES, UpdateQueue
from tests.sandbox.conftest import CHAT, TOKEN


async def first_update_id_of_a_new_sandbox() -> int:
    async with Sandbox() as sandbox, SandboxClient(sandbox.url, TOKEN) as user:
        return int((await user.send_text(CHAT, "hello"))["update_id"])


async def test_each_new_sandbox_numbers_its_updates_from_a_fresh_base() -> None:
    firsts = [await first_update_id_of_a_new_sandbox() for _ in range(3)]
    assert len(set(firsts)) == 3, "a restarted sandbox reused update ids"
    assert all(LOWEST_FIRST_UPDATE_ID <= first < 2**31 - ROOM_FOR_UPDATES for first in firsts)


def test_every_queue_starts_somewhere_else_unless_told() -> None:
    assert len({UpdateQueue().push({"message": {}})["update_id"] for _ in range(20)}) == 20
    assert UpdateQueue(first_update_id=7).push({"message": {}})["update_id"] == 7


async def epoch_of(http: aiohttp.ClientSession, sandbox: Sandbox) -> str:
    async with http.get(f"{sandbox.url}/sandbox/api/{TOKEN}/messages", params={"chat_id": str(CHAT)}) as response:
        return str((await response.json())["epoch"])


async def test_the_messages_epoch_is_stable_until_the_sandbox_forgets_its_chats(
    http: aiohttp.ClientSession, sandbox: Sandbox, user: SandboxClient
) -> None:
    first = await epoch_of(http, sandbox)
    await user.send_text(CHAT, "hello")
    assert await epoch_of(http, sandbox) == first
    await user.reset()
    assert await epoch_of(http, sandbox) != first
    async with Sandbox() as other:
        assert await epoch_of(http, other) not in (first, await epoch_of(http, sandbox))
