"""The ``durabot`` command line: run the service, migrate the database, clean up expired conversations.

Every failure an operator can act on (bad settings, a database that is unknown, refuses us or
cannot be reached, a port in use, a rejected token) ends as one line on standard error and exit
status 2, with secrets redacted; see :mod:`durabot.explain`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from durabot import __version__
from durabot.bootstrap import App, build_app
from durabot.config import Settings
from durabot.console.accounts import Accounts
from durabot.console.photos import TelegramPhotos
from durabot.console.server import console_server
from durabot.transport.telegram import make_bot
from durabot.explain import explain
from durabot.logs import configure_logging
from durabot.redaction import redact
from durabot.service import Service
from durabot.storage.migrate import current_revision, has_tables, upgrade

T = TypeVar("T")

EXIT_FAILURE = 2
"""The exit status of every failure, so that a supervisor can tell it from a clean stop."""

app = typer.Typer(
    help="durabot: Telegram conversations that never lose their place or their data.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals would show settings and answers
)
console = Console()


def _fail(message: str) -> NoReturn:
    """Print ``message`` as one line on standard error and exit with status 2."""
    print(f"error: {' '.join(redact(message).split())}", file=sys.stderr, flush=True)
    raise typer.Exit(code=EXIT_FAILURE)


def _crash(error: BaseException) -> NoReturn:
    """A bug rather than something to configure: the traceback, redacted, then exit status 2."""
    sys.stderr.write(redact("".join(traceback.format_exception(error))))
    raise typer.Exit(code=EXIT_FAILURE)


def _show_version(asked: bool) -> None:
    if asked:
        print(f"durabot {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print durabot's version and exit."
    ),
) -> None:
    """durabot: Telegram conversations that never lose their place or their data."""


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as invalid:
        _fail(f"invalid configuration — {_problems(invalid)}")


def _problems(invalid: ValidationError) -> str:
    """``LOG_LEVEL: Input should be …; …``: each problem with its variable, never its value."""
    problems = []
    for error in invalid.errors():
        name = "_".join(map(str, error["loc"])).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if name and not message.startswith(name) else message)
    return "; ".join(problems)


def _with_app(work: Callable[[App], Awaitable[T]]) -> T:
    """Read the settings, set up logging, wire the app, run ``work`` on it and close it.

    A failure the operator can act on ends in one line (:func:`_fail`), anything else in a
    redacted traceback; both exit with status 2.
    """
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format, settings.secret_values())

    async def _main() -> T:
        wired = build_app(settings)
        try:
            return await work(wired)
        finally:
            await wired.close()

    try:
        return asyncio.run(_main())
    except Exception as error:
        reason = explain(error, settings.database_url)
        if reason is None:
            _crash(error)
        _fail(reason)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (DATABASE_URL)."""

    async def _migrate(wired: App) -> str | None:
        await upgrade(wired.database)
        return await current_revision(wired.database)

    revision = _with_app(_migrate)
    console.print(f"Database is at revision [bold]{revision}[/bold].")


@app.command()
def cleanup() -> None:
    """Remove conversations that have expired."""

    async def _cleanup(wired: App) -> int:
        await upgrade(wired.database)
        return await wired.engine.cleanup()

    removed = _with_app(_cleanup)
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

    async def _run(wired: App) -> None:
        await Service(wired, announce=lambda line: print(line, flush=True)).run(_until_signalled())

    _with_app(_run)


@app.command("console")
def console_command() -> None:
    """Serve the operator console alone (ADMIN_LISTEN_HOST/ADMIN_LISTEN_PORT) until SIGTERM or Ctrl-C, without the bot."""

    async def _serve(wired: App) -> None:
        await upgrade(wired.database)
        photos = TelegramPhotos()
        token = wired.settings.telegram_bot_token
        if token is not None:  # machines' photos are fetched through the bot
            photos.bot = make_bot(token.get_secret_value(), wired.settings.telegram_api_base_url)
        server = console_server(wired, photos)
        await server.start()
        print(f"Operator console at http://{wired.settings.admin_listen_host}:{server.ports['console']}/", flush=True)
        try:
            await _until_signalled().wait()
        finally:
            await server.stop()
            if photos.bot is not None:
                await photos.bot.shutdown()

    _with_app(_serve)


admin = typer.Typer(help="Operator accounts for the console.", no_args_is_help=True)
app.add_typer(admin, name="admin")


@admin.command("add-user")
def add_user(
    name: str = typer.Argument(..., help="The operator's login name."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="Asked for when not given (never echoed)."
    ),
) -> None:
    """Create an operator who can log in to the console (the password is stored as an argon2 hash)."""

    async def _add(wired: App) -> None:
        await upgrade(wired.database)
        await Accounts(wired.database).add(name, password, wired.clock())

    _with_app(_add)
    console.print(f"Operator [bold]{name.strip()}[/bold] can now log in to the console.")


repair = typer.Typer(help="Find and fix data left broken by older versions.", no_args_is_help=True)
app.add_typer(repair, name="repair")


@repair.command("orphans")
def repair_orphans_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the orphans; change nothing."),
) -> None:
    """Re-create the missing case of every intake progress row that has none (case ids are kept)."""
    from rich.progress import Progress
    from rich.table import Table

    from durabot.actions.repair import RepairReport, repair_orphans

    async def _repair(wired: App) -> RepairReport | None:
        if not await has_tables(wired.database, "cases", "case_intake_progress"):
            return None
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("Re-creating cases", total=None)
            return await repair_orphans(wired.uow_factory, dry_run, on_repaired=lambda orphan: bar.advance(task))

    report = _with_app(_repair)
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
def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON instead of a table."),
) -> None:
    """Check the database, its migrations, orphans, inbox, outbox, poller lease, webhook and outage journal.

    Exits with status 1 if any check finds a problem (warnings alone exit 0).
    """
    import json

    from rich.table import Table
    from rich.text import Text

    from durabot.doctor import Finding, Status, diagnose, healthy

    findings: list[Finding] = _with_app(diagnose)
    if as_json:
        print(json.dumps({"healthy": healthy(findings), "findings": [f.as_dict() for f in findings]}, indent=2))
    else:
        table = Table(title="durabot doctor")
        for column in ("check", "status", "detail"):
            table.add_column(column)
        styles = {Status.OK: "green", Status.WARN: "yellow", Status.PROBLEM: "bold red"}
        for finding in findings:
            table.add_row(finding.name, Text(finding.status, style=styles[finding.status]), Text(finding.detail))
        console.print(table)
    if not healthy(findings):
        raise typer.Exit(code=1)


@app.command()
def sandbox(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8081, help="Port to listen on (0 picks a free one)."),
) -> None:
    """Run only the local Bot API sandbox and its chat page, for a bot started elsewhere."""
    from durabot.errors import cannot_listen
    from durabot.sandbox import run_sandbox

    try:
        run_sandbox(host, port)
    except OSError as error:
        _fail(str(cannot_listen(error, host, port, "--port")))
