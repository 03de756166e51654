"""A typed client of the sandbox's test API, for tests that play the Telegram user."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import aiohttp


class SandboxApiError(Exception):
    """The test API refused a request."""


class SandboxClient:
    """Injects updates and faults into one bot of a running sandbox and reads back what the bot did.

    Use as ``async with SandboxClient(sandbox.url, token) as user: await user.send_text(1001, "/start")``.
    """

    def __init__(self, base_url: str, token: str) -> None:
        """Talk to the bot with ``token`` on the sandbox at ``base_url`` (e.g. ``Sandbox.url``)."""
        self._root = f"{base_url.rstrip('/')}/sandbox/api/{token}"
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self, verb: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None
    ) -> Any:
        """One test API request; its JSON answer.

        Raises:
            SandboxApiError: the sandbox answered with an error status.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession()
        params = {name: str(value) for name, value in (query or {}).items() if value is not None}
        async with self._session.request(verb, f"{self._root}/{path}", json=body, params=params) as response:
            answer = await response.json()
            if response.status >= 400:
                raise SandboxApiError(f"{response.status}: {answer.get('description')}")
            return answer

    async def _inject(self, kind: str, chat_id: int, user_id: int | None, **fields: Any) -> dict[str, Any]:
        """Queue an update of ``kind`` from ``user_id`` (the chat's own id by default)."""
        body = {"type": kind, "chat_id": chat_id, "user_id": user_id or chat_id, **fields}
        result: dict[str, Any] = await self._call("POST", "updates", body)
        return result

    async def send_text(self, chat_id: int, text: str, user_id: int | None = None, **fields: Any) -> dict[str, Any]:
        """The user types ``text`` (``first_name=``, ``username=`` optional); returns ``{"update_id", "update"}``."""
        return await self._inject("message", chat_id, user_id, text=text, **fields)

    async def press_button(
        self, chat_id: int, message_id: int, data: str, user_id: int | None = None
    ) -> dict[str, Any]:
        """The user presses a button carrying ``data`` under bot message ``message_id``."""
        return await self._inject("callback", chat_id, user_id, message_id=message_id, data=data)

    async def send_photo(
        self, chat_id: int, caption: str | None = None, user_id: int | None = None, size_bytes: int | None = None
    ) -> dict[str, Any]:
        """The user sends a small generated photo; ``size_bytes`` pads it (e.g. past the 20 MB limit)."""
        fields: dict[str, Any] = {"caption": caption, "size_bytes": size_bytes}
        return await self._inject("photo", chat_id, user_id, **{k: v for k, v in fields.items() if v is not None})

    async def send_sticker(self, chat_id: int, user_id: int | None = None) -> dict[str, Any]:
        """The user sends a sticker."""
        return await self._inject("sticker", chat_id, user_id)

    async def send_raw(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update exactly as given (the sandbox adds the ``update_id``)."""
        result: dict[str, Any] = await self._call("POST", "updates", {"update": update})
        return result

    async def redeliver(self, update_id: int) -> dict[str, Any]:
        """Queue an earlier update again under the same ``update_id``."""
        result: dict[str, Any] = await self._call("POST", "redeliver", {"update_id": update_id})
        return result

    async def pending_updates(self) -> list[dict[str, Any]]:
        """Updates the bot has not confirmed yet."""
        result: list[dict[str, Any]] = (await self._call("GET", "updates"))["updates"]
        return result

    async def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Every message in the chat, user's and bot's, in order."""
        result: list[dict[str, Any]] = (await self._call("GET", "messages", query={"chat_id": chat_id}))["messages"]
        return result

    async def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Only the bot's messages in the chat."""
        return [message for message in await self.messages(chat_id) if message["from_bot"]]

    async def callback_answers(self) -> list[dict[str, Any]]:
        """Every button press the bot answered."""
        result: list[dict[str, Any]] = (await self._call("GET", "callback_answers"))["callback_answers"]
        return result

    async def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """The Bot API calls the sandbox received, optionally of one method only."""
        result: list[dict[str, Any]] = (await self._call("GET", "calls", query={"method": method}))["calls"]
        return result

    async def fail(
        self, method: str, status: int, count: int = 1, retry_after: int | None = None, description: str | None = None
    ) -> None:
        """Make the next ``count`` calls of ``method`` fail with ``status``."""
        body = {"method": method, "status": status, "count": count, "retry_after": retry_after}
        await self._call("POST", "faults", {**body, "description": description})

    async def delay(self, method: str, seconds: float, count: int = 1) -> None:
        """Hold the next ``count`` calls of ``method`` for ``seconds`` before answering."""
        await self._call("POST", "faults", {"method": method, "delay": seconds, "count": count})

    async def block(self, chat_id: int, blocked: bool = True) -> None:
        """Have the chat's user block (or unblock) the bot."""
        await self._call("POST", "faults", {"chat_id": chat_id, "blocked": blocked})

    async def clear_faults(self) -> None:
        """Forget every waiting fault and unblock every chat."""
        await self._call("DELETE", "faults")

    async def reset(self) -> None:
        """Forget everything the sandbox holds for this bot."""
        await self._call("POST", "reset")
