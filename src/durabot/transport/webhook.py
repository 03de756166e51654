"""Webhook endpoint: checks Telegram's secret header, commits the update to the inbox, then answers 200."""

from __future__ import annotations

import asyncio
import hmac
import json
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from durabot.engine.events import IgnoredUpdate, Received
from durabot.engine.runner import Engine, Intake
from durabot.errors import cannot_listen
from durabot.observe import BaseObserver, Observer
from durabot.storage.availability import describe, is_unavailable
from durabot.transport.updates import event_from_update

log = structlog.get_logger("durabot.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1024 * 1024
REQUEST_TIMEOUT_SECONDS = 15.0
"""How long a client may take to send its request headers, and then its body, before it is cut off."""


class NotJsonError(ValueError):
    """A request body that is not strict JSON."""


def parse_json(body: bytes) -> object:
    """The JSON value in ``body``: UTF-8, standard JSON only (no ``NaN``), any depth Python can parse.

    Raises:
        NotJsonError: the body is not UTF-8, not JSON, uses ``NaN``/``Infinity``, or nests too deeply.
    """
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise NotJsonError(type(error).__name__) from None


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _answer(status: int, description: str | None = None) -> web.Response:
    body = {"ok": True} if description is None else {"ok": False, "description": description}
    return web.json_response(body, status=status)


class WebhookServer:
    """An HTTP server with one route, the path of ``WEBHOOK_URL``.

    Answers 403 without the right secret, 400 for a body that is not an update with a usable
    ``update_id``, 408 to a client too slow to send its body (one too slow to send its headers
    is disconnected), 503 while the database is unavailable (Telegram will retry), and 200 only
    after the update is committed — malformed updates and updates for other bots included, stored
    as ignored with their reason. An update the database refuses for any other reason is stored
    as ignored without its content, so it cannot come back forever; only if even that fails is
    the answer 500.

    Args:
        engine: Stores updates in the inbox.
        webhook_url: The public URL; its path is the one served.
        secret: The secret Telegram sends in :data:`SECRET_HEADER`.
        host: The address to listen on.
        port: The port to listen on; 0 picks a free one (see :attr:`port`).
        observer: Told of every update committed (:meth:`~durabot.observe.Observer.updates_stored`).
        bot_id: The receiving bot's id (the number before the colon of its token).
        bot_username: The receiving bot's username, to ignore commands addressed to other bots.
        request_timeout: Seconds a client may take for its headers, and then for its body.
    """

    def __init__(
        self,
        engine: Engine,
        webhook_url: str,
        secret: str,
        host: str,
        port: int,
        observer: Observer | None = None,
        *,
        bot_id: int = 0,
        bot_username: str | None = None,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self._engine = engine
        self._secret = secret.encode()
        self._host = host
        self._observer = observer or BaseObserver()
        self._bot_id = bot_id
        self._bot_username = bot_username
        self._request_timeout = request_timeout
        self.path = urlsplit(webhook_url).path or "/"
        self._runner: web.AppRunner | None = None
        self.port = port
        """The port listened on (the one actually bound once started, when 0 was asked for)."""

    async def start(self) -> None:
        """Start listening.

        Raises:
            ConfigurationError: the port is taken or the address is not this machine's.
        """
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(self.path, self._receive)
        app.router.add_get("/healthz", self._health)
        # aiohttp closes a connection whose request headers are not complete within keepalive_timeout
        # of connecting (or of its previous response): that cuts off a client too slow with its headers.
        # After an answer to a request whose body was not read, it reads on for lingering_time at most.
        self._runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=self._request_timeout, lingering_time=self._request_timeout
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            self._runner = None
            raise cannot_listen(error, self._host, self.port, "WEBHOOK_LISTEN_PORT") from None
        self.port = int(self._runner.addresses[0][1])
        log.info("webhook.listening", host=self._host, port=self.port, path=self.path)

    async def stop(self) -> None:
        """Stop taking requests; requests in hand are finished first."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    def _secret_matches(self, given: str) -> bool:
        """Constant-time check of the secret header; Telegram's secrets are ASCII, so anything else is wrong."""
        return given.isascii() and hmac.compare_digest(given.encode("ascii"), self._secret)

    async def _receive(self, request: web.Request) -> web.Response:
        if not self._secret_matches(request.headers.get(SECRET_HEADER, "")):
            log.warning("webhook.rejected", reason="wrong secret", remote=request.remote)
            return _answer(403, "wrong secret token")
        try:
            async with asyncio.timeout(self._request_timeout):
                body = await request.read()
        except TimeoutError:
            log.warning("webhook.rejected", reason="body too slow", remote=request.remote)
            return _answer(408, "request body too slow")
        try:
            raw = parse_json(body)
        except NotJsonError as error:
            log.warning("webhook.rejected", reason="body is not JSON", problem=str(error))
            return _answer(400, "body is not JSON")
        item = event_from_update(raw, self._bot_id, self._bot_username)
        if item is None:
            log.warning("webhook.rejected", reason="no usable update_id", shape=type(raw).__name__)
            return _answer(400, "not a Telegram update")
        try:
            intake = await self._store(item, raw)
        except Exception as error:
            if is_unavailable(error):
                log.warning("webhook.database_unavailable", update_id=item.update_id, error=describe(error))
                return _answer(503, "try again later")
            log.error("webhook.store_failed", update_id=item.update_id, error=describe(error))
            return _answer(500, "could not store the update")
        self._observer.updates_stored(intake.new, intake.waiting)
        return _answer(200)

    async def _store(self, item: Received, raw: object) -> Intake:
        """Commit ``item`` with its raw JSON, applied at once where it can be; whether it was new and still waits.

        If the database refuses it (not for being down), its identity alone is stored, as ignored.
        """
        try:
            return await self._engine.take_in([item], {item.update_id: raw})
        except Exception as error:
            if is_unavailable(error):
                raise
            log.error("webhook.update_refused", update_id=item.update_id, error=describe(error))
            reason = f"refused by the database: {describe(error)}"
        refused = IgnoredUpdate(item.update_id, reason, item.bot_id, item.chat_id, item.user_id)
        return Intake(new=await self._engine.receive([refused]), waiting=0)
