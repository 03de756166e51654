"""The sandbox server: Bot API, file downloads, test API and chat page on one aiohttp app."""

from __future__ import annotations

import asyncio
import mimetypes
import signal
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

from durabot.sandbox import testapi
from durabot.sandbox.dispatch import handle_call
from durabot.sandbox.errors import ApiError, not_found
from durabot.sandbox.state import BotRegistry, BotState
from durabot.sandbox.webhook import WebhookDelivery

STATIC_DIR = Path(__file__).parent / "static"
MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Room for uploads past the 20 MB download limit, so that limit can be tested."""
SHUTDOWN_TIMEOUT = 1.0


class Sandbox:
    """A local stand-in for the Telegram Bot API, run inside the caller's event loop.

    Point python-telegram-bot at it with ``Bot(token, base_url=f"{sandbox.url}/bot",
    base_file_url=f"{sandbox.url}/file/bot")``; any token of the form ``<digits>:<secret>`` is a bot.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Prepare a sandbox on ``host``:``port``; port 0 picks a free port when started."""
        self._host = host
        self._port = port
        self._registry = BotRegistry(on_new_bot=self._start_delivery)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:41234``, with the real port once started."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def chat_page_url(self) -> str:
        """Where a person can chat with the bot in a browser."""
        return f"{self.url}/"

    async def start(self) -> None:
        """Start serving; returns once the port is bound."""
        self._session = aiohttp.ClientSession()
        self._runner = web.AppRunner(self._app(), shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError:  # e.g. the port is in use: release what was set up, so nothing is left unclosed
            await self.stop()
            raise
        self._port = int(self._runner.addresses[0][1])
        for bot in self._registry:
            bot.queue.closed = False
            self._start_delivery(bot)

    async def stop(self) -> None:
        """End long polls and webhook deliveries, then stop serving."""
        for bot in self._registry:
            bot.queue.close()
        for task in self._deliveries:
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()

    def _start_delivery(self, bot: BotState) -> None:
        """Run webhook delivery for a bot for as long as the sandbox runs."""
        if self._session is None:
            return
        task = asyncio.get_running_loop().create_task(WebhookDelivery(bot, self._session).run())
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    def _app(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app[testapi.REGISTRY_KEY] = self._registry
        app.router.add_route("*", "/bot{token}/{method}", self._bot_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._download)
        testapi.add_routes(app)
        app.router.add_get("/", self._chat_page)
        app.router.add_static("/static/", STATIC_DIR)
        return app

    async def _bot_api(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "POST"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        return await handle_call(self._registry, request.match_info["token"], request.match_info["method"], request)

    async def _download(self, request: web.Request) -> web.Response:
        try:
            bot = self._registry.get(request.match_info["token"])
            stored = bot.files.at_path(request.match_info["file_path"])
            if stored is None:
                raise not_found()
        except ApiError as error:
            return web.json_response(error.body(), status=error.status)
        content_type = mimetypes.guess_type(stored.file_path)[0] or "application/octet-stream"
        return web.Response(body=stored.data, content_type=content_type)

    async def _chat_page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")


def run_sandbox(host: str, port: int) -> None:
    """Run a sandbox until SIGTERM or SIGINT, after printing where its chat page is."""
    asyncio.run(_serve(host, port))


async def _serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    async with Sandbox(host, port) as sandbox:
        print(f"sandbox: chat page at {sandbox.chat_page_url}", flush=True)
        await stop.wait()
