"""Just enough of the Bot API for a poller: ``getMe``, and ``getUpdates`` answering with queued results."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self

from aiohttp import web


class FakeBotApi:
    """A Bot API server on a free local port whose ``getUpdates`` serves each queued result once, then ``[]``.

    A queued result is sent as given, list or not, so a test can serve batches Telegram never would.
    """

    def __init__(self, bot_id: int, username: str) -> None:
        self.results: list[Any] = []
        self.offsets: list[int | None] = []
        self._me = {"id": bot_id, "is_bot": True, "first_name": "Fake", "username": username}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/bot{token}/getMe", self._get_me)
        app.router.add_post("/bot{token}/getUpdates", self._get_updates)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _get_me(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "result": self._me})

    async def _get_updates(self, request: web.Request) -> web.Response:
        params = await request.post()
        self.offsets.append(int(str(params["offset"])) if "offset" in params else None)
        result = self.results.pop(0) if self.results else []
        return web.Response(text=json.dumps({"ok": True, "result": result}), content_type="application/json")
