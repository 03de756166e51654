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
from durabot.storage.migrate import current_revision, has_tables, upgrade

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

    try:
        revision = _run_async(_migrate())
    except RuntimeError as refused:  # a migration that refuses says why and what to do
        _fail(str(refused))
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


repair = typer.Typer(help="Find and fix data left broken by older versions.", no_args_is_help=True)
app.add_typer(repair, name="repair")


@repair.command("orphans")
def repair_orphans_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the orphans; change nothing."),
) -> None:
    """Re-create the missing case of every intake progress row that has none (case ids are kept)."""
    from rich.progress import Progress
    from rich.table import Table

    from durabot.services.repair import RepairReport, repair_orphans

    async def _repair() -> RepairReport | None:
        wired = _app()
        try:
            if not await has_tables(wired.database, "cases", "case_intake_progress"):
                return None
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("Re-creating cases", total=None)
                return await repair_orphans(
                    wired.uow_factory, dry_run, on_repaired=lambda orphan: bar.advance(task)
                )
        finally:
            await wired.close()

    report = _run_async(_repair())
    if report is None:
        _fail("this database has no cases or intake progress tables yet: there is nothing to repair.")
    if not report.orphans:
        console.print("No orphans: every intake progress row has its case.")
        return
    table = Table(title=f"{len(report.orphans)} intake progress row(s) without a case")
    for column in ("case_id", "user_id", "current block", "last updated"):
        table.add_column(column)
    for orphan in report.orphans:
        table.add_row(str(orphan.case_id), str(orphan.user_id), orphan.current_block or "—", f"{orphan.updated_at:%Y-%m-%d %H:%M}")
    console.print(table)
    if report.dry_run:
        console.print("Dry run: nothing was changed. Run without --dry-run to re-create these cases.")
    else:
        console.print(f"Re-created {report.repaired} case(s) with their original ids, titled “Intake (Recovered)”.")


@app.command()
def sandbox(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8081, help="Port to listen on (0 picks a free one)."),
) -> None:
    """Run only the local Bot API sandbox and its chat page, for a bot started elsewhere."""
    from durabot.sandbox import run_sandbox

    run_sandbox(host, port)
