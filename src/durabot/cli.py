"""The ``durabot`` command line: run the service, migrate the database, clean up expired conversations."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

import typer
from rich.console import Console

from durabot.bootstrap import App, build_app
from durabot.config import Settings
from durabot.logs import configure_logging
from durabot.service import Service
from durabot.storage.migrate import current_revision, upgrade

T = TypeVar("T")

app = typer.Typer(help="durabot: Telegram conversations that never lose their place or their data.", no_args_is_help=True)
console = Console()


def _fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    raise typer.Exit(code=2)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in invalid.errors())
        _fail(f"invalid configuration — {problems}")


def _app() -> App:
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    return build_app(settings)


def _run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; a database that cannot be reached is reported in one line, not a traceback."""
    try:
        return asyncio.run(work)
    except (OSError, OperationalError, InterfaceError) as error:
        _fail(f"cannot use the database: {error}")


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

    revision = _run_async(_migrate())
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

    removed = _run_async(_cleanup())
    console.print(f"Removed {removed} expired conversation{'s' if removed != 1 else ''}.")


def _until_signalled() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


@app.command()
def run() -> None:
    """Run the bot until SIGTERM or Ctrl-C.

    Migrates the database, then takes updates (long polling, or a webhook when
    WEBHOOK_URL is set), applies them, sends replies and expires old conversations.
    Without TELEGRAM_BOT_TOKEN it starts the local sandbox and prints its chat page.
    """

    async def _run() -> None:
        wired = _app()
        try:
            await Service(wired, announce=lambda line: print(line, flush=True)).run(_until_signalled())
        finally:
            await wired.close()

    _run_async(_run())


@app.command()
def sandbox(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8081, help="Port to listen on (0 picks a free one)."),
) -> None:
    """Run only the local Bot API sandbox and its chat page, for a bot started elsewhere."""
    from durabot.sandbox import run_sandbox

    run_sandbox(host, port)
