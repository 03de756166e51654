"""Photos: uploads and user photos become files that getFile describes and the file URL serves."""

from __future__ import annotations

import pytest
from telegram import Bot
from telegram.error import BadRequest

from durabot.sandbox import SandboxClient
from durabot.sandbox.files import generate_png
from tests.sandbox.conftest import CHAT


async def test_an_uploaded_photo_can_be_fetched_back(bot: Bot, user: SandboxClient) -> None:
    picture = generate_png(40, 30)
    sent = await bot.send_photo(CHAT, photo=picture, caption="Nameplate", filename="plate.png")
    assert sent.caption == "Nameplate"
    size = sent.photo[-1]
    assert (size.width, size.height, size.file_size) == (40, 30, len(picture))

    file = await bot.get_file(size.file_id)
    assert file.file_size == len(picture) and file.file_path is not None
    assert bytes(await file.download_as_bytearray()) == picture

    [listed] = await user.messages(CHAT)
    assert listed["content"] == "photo" and listed["caption"] == "Nameplate"
    assert listed["image_url"].endswith(".png")


async def test_a_photo_can_be_sent_again_by_file_id(bot: Bot) -> None:
    first = await bot.send_photo(CHAT, photo=generate_png())
    again = await bot.send_photo(CHAT + 1, photo=first.photo[-1].file_id)
    assert again.photo[-1].file_id == first.photo[-1].file_id
    with pytest.raises(BadRequest, match="Wrong file identifier"):
        await bot.send_photo(CHAT, photo="no-such-file")


async def test_a_users_photo_can_be_downloaded(bot: Bot, user: SandboxClient) -> None:
    await user.send_photo(CHAT, caption="machine")
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.caption == "machine"
    file = await update.message.photo[-1].get_file()
    content = bytes(await file.download_as_bytearray())
    assert content.startswith(b"\x89PNG") and len(content) == update.message.photo[-1].file_size


async def test_files_over_20_mb_cannot_be_fetched(bot: Bot, user: SandboxClient) -> None:
    await user.send_photo(CHAT, size_bytes=20 * 1024 * 1024 + 1)
    [update] = await bot.get_updates()
    assert update.message is not None
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(update.message.photo[-1].file_id)
