"""The ``durabot`` command line: run the service, migrate the database, clean up expired conversations."""

from __future__ import annotations

import asyncio
import signal

import typer
from rich.console import Console

from durabot.bootstrap import App, build_app
from durabot.config import Settings
from durabot.logs import configure_logging
from durabot.service import run_service
from durabot.storage.migrate import current_revision, upgrade

app = typer.Typer(help="durabot: Telegram conversations that never lose their place or their data.", no_args_is_help=True)
console = Console()


def _app() -> App:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return build_app(settings)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (DATABASE_URL)."""

    async def _migrate() -> str | None:
        wired = _app()
        try:
            await upgrade(wired.database)
            return await current_revision(wired.database)
        finally:
            await wired.close()

    revision = asyncio.run(_migrate())
    console.print(f"Database is at revision [bold]{revision}[/bold].")


@app.command()
def cleanup() -> None:
    """Remove conversations that have expired."""

    async def _cleanup() -> int:
        wired = _app()
        try:
            await upgrade(wired.database)
            return await wired.engine.cleanup()
        finally:
            await wired.close()

    removed = asyncio.run(_cleanup())
    console.print(f"Removed {removed} expired conversation{'s' if removed != 1 else ''}.")


@app.command()
def run() -> None:
    """Run the service until SIGTERM or Ctrl-C: migrate, apply updates, expire conversations."""

    async def _run() -> None:
        wired = _app()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await run_service(wired, stop)
        finally:
            await wired.close()

    asyncio.run(_run())
