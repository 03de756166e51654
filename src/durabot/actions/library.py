"""The /library command: a user's machines, newest first, a page at a time with next/previous buttons, and their photos."""

from __future__ import annotations

from durabot.engine.ports import Domains
from durabot.flows.add_machine import one_line
from durabot.replies import Button, Outgoing, Photo, Reply

PAGE_SIZE = 10
BUTTON_PREFIX = "lib:"


def parse_page(text: str) -> int | None:
    """A page number from 1 up written in ASCII digits, or ``None``."""
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    return int(text) or None


class Library:
    """Renders pages of the user's equipment library; stateless, so its buttons never expire."""

    def __init__(self, page_size: int = PAGE_SIZE) -> None:
        self._page_size = page_size

    async def run(self, domains: Domains, user_id: int, argument: str) -> list[Outgoing]:
        page = parse_page(argument) or 1
        return await self.page(domains, user_id, page)

    async def press(self, domains: Domains, user_id: int, data: str) -> list[Outgoing] | None:
        page = parse_page(data)
        return await self.page(domains, user_id, page) if page else None

    async def page(self, domains: Domains, user_id: int, page: int) -> list[Outgoing]:
        """Page ``page`` (from 1) of the library — the photos of its machines, then the list — past the end the last page."""
        total = await domains.machines.count(user_id)
        if total == 0:
            return [Reply("Your library is empty. Send /addmachine to add your first machine.")]
        pages = -(-total // self._page_size)
        page = min(page, pages)
        machines = await domains.machines.newest_first(user_id, (page - 1) * self._page_size, self._page_size)
        first = (page - 1) * self._page_size + 1
        lines = [
            f"{first + index}. {one_line(machine)}" + (" 📷" if machine.photo_file_id else "")
            for index, machine in enumerate(machines)
        ]
        photos: list[Outgoing] = [
            Photo(machine.photo_file_id, f"{first + index}. {machine.nickname}")
            for index, machine in enumerate(machines)
            if machine.photo_file_id
        ]
        noun = "machine" if total == 1 else "machines"
        header = f"Your library — {total} {noun}, newest first"
        if pages > 1:
            header += f" (page {page} of {pages})"
        navigation = []
        if page > 1:
            navigation.append(Button("‹ Previous", f"{BUTTON_PREFIX}{page - 1}"))
        if page < pages:
            navigation.append(Button("Next ›", f"{BUTTON_PREFIX}{page + 1}"))
        return [*photos, Reply(header + ":\n" + "\n".join(lines), (tuple(navigation),) if navigation else ())]
