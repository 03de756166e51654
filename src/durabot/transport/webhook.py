"""Webhook endpoint: checks Telegram's secret header, commits the update to the inbox, then answers 200."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from durabot.engine.runner import Engine
from durabot.transport.telegram import event_from_update

log = structlog.get_logger("durabot.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class WebhookServer:
    """An HTTP server with one route, the path of ``WEBHOOK_URL``.

    Answers 403 without the right secret (nothing is stored), 400 for a body that is
    not an update, 500 when the inbox cannot be written (Telegram will retry), and 200
    only after the update is committed.
    """

    def __init__(
        self,
        engine: Engine,
        webhook_url: str,
        secret: str,
        host: str,
        port: int,
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._secret = secret
        self._host = host
        self._on_stored = on_stored
        self.path = urlsplit(webhook_url).path or "/"
        self._runner: web.AppRunner | None = None
        self.port = port
        """The port listened on (the one actually bound once started, when 0 was asked for)."""

    async def start(self) -> None:
        """Start listening."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post(self.path, self._receive)
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("webhook.listening", host=self._host, port=self.port, path=self.path)

    async def stop(self) -> None:
        """Stop taking requests; requests in hand are finished first."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("webhook.rejected", reason="wrong secret", remote=request.remote)
            return web.json_response({"ok": False, "description": "wrong secret token"}, status=403)
        try:
            raw = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "description": "body is not JSON"}, status=400)
        if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
            return web.json_response({"ok": False, "description": "not a Telegram update"}, status=400)
        event = event_from_update(raw)
        if event is not None:
            try:
                stored = await self._engine.receive([event], {event.update_id: raw})
            except Exception:
                log.exception("webhook.store_failed", update_id=raw["update_id"])
                return web.json_response({"ok": False, "description": "try again later"}, status=500)
            if stored:
                self._on_stored()
        return web.json_response({"ok": True})
