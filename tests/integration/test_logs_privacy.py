"""A whole EB-1A intake at LOG_LEVEL=DEBUG, with database errors on the way, logs no answer, token or secret — on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from durabot.bootstrap import build_registry
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.engine.ports import Domains
from durabot.engine.step_view import RecordingDomains
from durabot.engine.runner import APOLOGY
from durabot.replies import Reply
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWork
from tests.conftest import ScratchDatabase
from tests.integration.conftest import Chat, Harness
from tests.integration.intake_answers import ALL, BASIC
from tests.logcapture import CapturedLogs, captured_logs

__all__ = ["captured_logs"]

ANSWERS = dict(BASIC)
TYPED = [ANSWERS["full_name"], ANSWERS["email"], ANSWERS["phone"], ANSWERS["date_of_birth"]]
TOKEN = "5550001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "hook-Secret_9"

FAILING_STATEMENTS = {
    # a unique violation: PostgreSQL quotes the key, "Key (email)=(maria@…) already exists"
    "probe_duplicate": "INSERT INTO privacy_probe (email, phone, born) VALUES (:typed, :phone, :born)",
    # a not-null violation: PostgreSQL quotes the whole row, "Failing row contains (maria@…, +1 555…, null)"
    "probe_missing": "INSERT INTO privacy_probe (email, phone, born) VALUES (:typed, :phone, NULL)",
    # a parameter of the wrong type: asyncpg quotes it, "invalid input for query argument $1: 'maria@…'"
    "probe_mistyped": "INSERT INTO privacy_probe (email, phone, born) VALUES ('x', 'y', :typed + 1)",
}


class FailingStatement:
    """A command whose step runs a statement that fails, with the user's typed text among its parameters."""

    def __init__(self, statement: str) -> None:
        self._statement = statement

    async def run(self, domains: Domains, user_id: int, argument: str) -> list[Reply]:
        assert isinstance(domains, RecordingDomains) and isinstance(domains.stored, SqlAlchemyUnitOfWork)
        parameters = {"typed": argument, "phone": ANSWERS["phone"], "born": ANSWERS["date_of_birth"]}
        await domains.stored.connection.execute(text(self._statement), parameters)
        return [Reply("stored")]


async def harness_with_failing_commands(test_db: ScratchDatabase, clock: FakeClock) -> Harness:
    registry = build_registry(clock)
    for name, statement in FAILING_STATEMENTS.items():
        registry.add_command(name, FailingStatement(statement), "fails on purpose")
    harness = Harness(test_db, clock, registry)
    async with harness.database.transaction() as connection:
        await connection.execute(text("CREATE TABLE privacy_probe (email TEXT UNIQUE, phone TEXT NOT NULL, born TEXT NOT NULL)"))
        await connection.execute(
            text("INSERT INTO privacy_probe VALUES (:email, :phone, :born)"),
            {"email": ANSWERS["email"], "phone": ANSWERS["phone"], "born": ANSWERS["date_of_birth"]},
        )
    return harness


async def test_a_full_intake_and_failing_steps_at_debug_log_no_answer_token_or_secret(
    test_db: ScratchDatabase, clock: FakeClock, captured_logs: CapturedLogs
) -> None:
    settings = Settings(
        _env_file=None, telegram_bot_token=TOKEN, webhook_url="https://bot.example.org/hook", webhook_secret=SECRET
    )
    captured_logs.configure("DEBUG", "json", settings.secret_values())
    harness = await harness_with_failing_commands(test_db, clock)
    try:
        chat = Chat(harness)
        await chat.say("/intake_start")
        for _key, typed in ALL:
            replies = await chat.say(typed)
        assert "4 of the 10 criteria" in replies[0], "the intake completed"
        for command in FAILING_STATEMENTS:
            mistyped_on_sqlite = command == "probe_mistyped" and test_db.kind == "sqlite"  # SQLite converts instead
            assert await chat.say(f"/{command} {ANSWERS['email']}") == (["stored"] if mistyped_on_sqlite else [APOLOGY])
    finally:
        await harness.close()

    failures = captured_logs.events("engine.step_failed")
    assert len(failures) == (2 if test_db.kind == "sqlite" else 3)
    assert all("Error" in failure["exception"] for failure in failures), "the database errors were logged, tracebacks and all"
    written = captured_logs.text
    for value in [*TYPED, ANSWERS["phone"].replace(" ", ""), TOKEN.split(":")[1], SECRET]:
        assert value not in written, f"{value!r} was logged"
