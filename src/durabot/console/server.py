"""The admin port's HTTP server: the operator console, ``/healthz``, ``/readyz`` and ``/metrics`` (also on a port of its own)."""

from __future__ import annotations

import json

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from durabot.bootstrap import App
from durabot.console.accounts import Accounts
from durabot.console.cases import CaseBook
from durabot.console.conversations_page import ConversationsSection
from durabot.console.equipment_page import EquipmentSection
from durabot.console.health import Health
from durabot.console.health_page import HealthSection
from durabot.console.metrics import Metrics
from durabot.console.photos import TelegramPhotos
from durabot.console.web import ConsolePages
from durabot.errors import cannot_listen

log = structlog.get_logger("durabot.console")


class ConsoleServer:
    """Serves health, readiness, metrics and the console's pages on ``host:port``; ``metrics_port`` puts ``/metrics`` on a port of its own.

    ``/metrics`` needs no login (bind it where only the scraper reaches); port 0 picks a free port,
    logged in ``console.listening``.
    """

    def __init__(
        self,
        health: Health,
        metrics: Metrics,
        host: str,
        port: int,
        metrics_port: int | None = None,
        pages: ConsolePages | None = None,
    ) -> None:
        self._health = health
        self._pages = pages
        self._metrics = metrics
        self._host = host
        self._port = port
        self._metrics_port = metrics_port
        self._runners: list[web.AppRunner] = []
        self.ports: dict[str, int] = {}
        """Where each site listens, once started: ``console`` and, if separate, ``metrics``."""

    async def start(self) -> None:
        """Listen.

        Raises:
            ConfigurationError: a port is taken or cannot be bound (named with its setting).
        """
        console = web.Application(client_max_size=64 * 1024)
        if self._pages is not None:
            self._pages.install(console)
        console.router.add_get("/healthz", self._healthz)
        console.router.add_get("/readyz", self._readyz)
        if self._metrics_port is None:
            console.router.add_get("/metrics", self._metrics_page)
        await self._listen("console", console, self._port, "ADMIN_LISTEN_PORT")
        if self._metrics_port is not None:
            scraped = web.Application()
            scraped.router.add_get("/metrics", self._metrics_page)
            await self._listen("metrics", scraped, self._metrics_port, "METRICS_LISTEN_PORT")
        log.info("console.listening", host=self._host, **{f"{name}_port": port for name, port in self.ports.items()})

    async def stop(self) -> None:
        """Stop listening."""
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def _listen(self, name: str, app: web.Application, port: int, setting: str) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise cannot_listen(error, self._host, port, setting) from None
        self._runners.append(runner)
        server = site._server  # aiohttp keeps the listening sockets there; the port is needed when 0 was asked for
        sockets = getattr(server, "sockets", None) or []
        self.ports[name] = int(sockets[0].getsockname()[1]) if sockets else port

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def _readyz(self, _request: web.Request) -> web.Response:
        readiness = await self._health.readiness()
        return web.Response(
            text=json.dumps(readiness.as_json()), status=200 if readiness.ready else 503, content_type="application/json"
        )

    async def _metrics_page(self, _request: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def console_server(app: App, photos: TelegramPhotos | None = None) -> ConsoleServer:
    """The admin port's server for ``app``, with the console's pages, as its settings say; ``photos`` shows machines' photos."""
    settings = app.settings
    assert app.health is not None and app.metrics is not None
    pages = ConsolePages(
        Accounts(app.database),
        CaseBook(app.database),
        app.clock,
        sections=(
            EquipmentSection(app.database, photos=photos),
            ConversationsSection(app.database, app.engine_registry),
            HealthSection(app.database, app.settings, app.metrics),
        ),
    )
    return ConsoleServer(
        app.health, app.metrics, settings.admin_listen_host, settings.admin_listen_port, settings.metrics_listen_port, pages
    )
