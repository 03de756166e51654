"""Logs and settings never show a secret: the token, the webhook secret, the database password, or values a database error quotes."""

from __future__ import annotations

import logging

import pytest
import structlog
from pydantic import ValidationError
from telegram.error import BadRequest

from durabot.config import Settings
from durabot.errors import DurabotError
from durabot.explain import explain
from durabot.redaction import REDACTED, redact, register_secrets
from tests.logcapture import CapturedLogs, captured_logs

__all__ = ["captured_logs"]

TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SECRET = "webhook-Secret_42"
PASSWORD = "pa55/w@rd"
DATABASE_URL = "postgresql://durabot:pa55%2Fw%40rd@db.internal:5432/durabot"


def settings() -> Settings:
    return Settings(
        _env_file=None,
        telegram_bot_token=TOKEN,
        webhook_url="https://bot.example.org/hook",
        webhook_secret=SECRET,
        database_url=DATABASE_URL,
    )


def test_repr_of_settings_shows_neither_token_nor_webhook_secret_nor_database_password() -> None:
    shown = repr(settings()) + str(settings())
    for secret in (TOKEN, TOKEN.split(":")[1], SECRET, PASSWORD, "pa55%2Fw%40rd"):
        assert secret not in shown
    assert "postgresql+asyncpg://durabot:***@db.internal:5432/durabot" in shown


def test_settings_know_every_secret_no_log_may_show() -> None:
    assert set(settings().secret_values()) == {TOKEN, SECRET, PASSWORD, "pa55%2Fw%40rd"}


def test_the_secrets_are_read_with_get_secret_value() -> None:
    configured = settings()
    assert configured.telegram_bot_token is not None and configured.telegram_bot_token.get_secret_value() == TOKEN
    assert configured.webhook_secret is not None and configured.webhook_secret.get_secret_value() == SECRET
    assert not configured.uses_sandbox
    assert Settings(_env_file=None, telegram_bot_token="").uses_sandbox


@pytest.mark.parametrize("token", ["1000001:sandbox", "424242:e2e-token", TOKEN])
def test_bot_tokens_of_telegram_the_sandbox_and_the_tests_are_accepted(token: str) -> None:
    assert Settings(_env_file=None, telegram_bot_token=token).telegram_bot_token is not None


@pytest.mark.parametrize("token", ["AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "123:", ":abc", "123:abc def", "bot123:abc", "12a:bc"])
def test_a_malformed_token_is_refused_without_repeating_it(token: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, telegram_bot_token=token)
    assert "is not a bot token" in str(refused.value)
    assert token not in str(refused.value)


def test_log_level_is_one_of_the_five_names_in_any_case() -> None:
    assert Settings(_env_file=None, log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValidationError, match="log_level"):
        Settings(_env_file=None, log_level="bogus")


def test_a_bad_database_url_is_refused_without_repeating_it() -> None:
    for url in ("no-scheme-but-pa55word", "mysql://root:pa55word@localhost/x"):
        with pytest.raises(ValidationError) as refused:
            Settings(_env_file=None, database_url=url)
        assert "pa55word" not in str(refused.value)


def test_registered_secrets_and_any_bot_token_are_redacted_from_text() -> None:
    register_secrets(["s3cr3t-value", None, ""])
    assert redact("a s3cr3t-value b") == f"a {REDACTED} b"
    assert redact("POST https://api.telegram.org/bot123456:AA-bb_CC/getMe") == (
        f"POST https://api.telegram.org/bot123456:{REDACTED}/getMe"
    )
    assert redact(f"token {TOKEN} rejected") == f"token 987654321:{REDACTED} rejected"
    assert redact("at 12:30 on 2026-01-05, 3 of 4") == "at 12:30 on 2026-01-05, 3 of 4"


@pytest.mark.parametrize(
    ("said", "hidden"),
    [
        (
            'duplicate key value violates unique constraint "t_x_key"\nDETAIL:  Key (user_id, nickname)=(7, Maria\'s press) already exists.',
            'DETAIL:  Key (user_id, nickname)=([hidden])',
        ),
        (
            'null value in column "phone" violates not-null constraint\nDETAIL:  Failing row contains (maria@example.org, null).',
            "Failing row contains ([hidden]).",
        ),
        (
            "invalid input for query argument $1: 'maria@example.org' ('str' object cannot be interpreted as an integer)",
            "invalid input for query argument $1: [hidden] ('str' object cannot be interpreted as an integer)",
        ),
        ('invalid input syntax for type integer: "maria@example.org"', "invalid input syntax for type integer: [hidden]"),
        ('value "55512345678901" is out of range for type integer', "value [hidden] is out of range for type integer"),
        ('Token "maria@example.org" is invalid.\nCONTEXT:  JSON data, line 1: maria@example.org', "JSON data, line 1: [hidden]"),
    ],
)
def test_values_quoted_in_database_errors_are_hidden(said: str, hidden: str) -> None:
    redacted = redact(said)
    assert hidden in redacted
    assert "maria" not in redacted.lower() and "5551234" not in redacted


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_log_lines_and_tracebacks_are_redacted_in_both_formats(captured_logs: CapturedLogs, fmt: str) -> None:
    captured_logs.configure("DEBUG", fmt, settings().secret_values())
    log = structlog.get_logger("durabot.test")
    log.info("event.with_values", url=f"https://api.telegram.org/bot{TOKEN}/getMe", nested={"secret": [SECRET]})
    try:
        raise RuntimeError(f"The token `{TOKEN}` was rejected; connecting with password {PASSWORD}")
    except RuntimeError:
        log.exception("event.failed")
    logging.getLogger("httpx").warning("HTTP Request: POST %s %r", f"https://api.telegram.org/bot{TOKEN}/setWebhook", {"secret_token": SECRET})
    written = captured_logs.text
    assert "event.failed" in written and "RuntimeError" in written and "HTTP Request: POST" in written
    for secret in (TOKEN, TOKEN.split(":")[1], SECRET, PASSWORD):
        assert secret not in written
    assert written.count(REDACTED) >= 5


def test_libraries_that_log_rows_arguments_or_request_bodies_stay_quiet_at_debug(captured_logs: CapturedLogs) -> None:
    captured_logs.configure("DEBUG", "json")
    for name in ("sqlalchemy.engine.Engine", "aiosqlite", "telegram.Bot", "httpx", "telegram.ext.ExtBot"):
        logging.getLogger(name).debug("Row ('maria@example.org', '+1 555 123 4567')")
        logging.getLogger(name).info("Row ('maria@example.org', '+1 555 123 4567')")
    logging.getLogger("durabot.anything").debug("ours at debug")
    assert "maria" not in captured_logs.text
    assert "ours at debug" in captured_logs.text


def test_a_response_body_python_telegram_bot_cannot_parse_is_not_logged(captured_logs: CapturedLogs) -> None:
    captured_logs.configure("DEBUG", "json")
    body = '{"ok":true,"result":[{"update_id":5,"message":{"text":"my passport number is X1234567"'
    logging.getLogger("telegram.request._baserequest").error('Can not load invalid JSON data: "%s"', body)
    assert "Can not load invalid JSON data" in captured_logs.text
    assert "X1234567" not in captured_logs.text


class TaskDied(DurabotError):
    """Stands for a background task that ended of another error."""


def test_an_operator_reads_one_line_for_what_they_can_fix_and_none_for_a_bug() -> None:
    url = "postgresql://durabot:pa55word@db.internal:5432/durabot"
    refused = ConnectionRefusedError(111, "Connect call failed ('10.0.0.7', 5432)")
    assert explain(refused, url) == (
        "cannot reach the database postgresql://durabot:***@db.internal:5432/durabot: "
        "[Errno 111] Connect call failed ('10.0.0.7', 5432) (ConnectionRefusedError)"
    )
    try:
        raise TaskDied("the intake task stopped unexpectedly") from BadRequest(f"bad webhook for bot{TOKEN}")
    except TaskDied as died:
        assert explain(died, url) == f"the Bot API refused: bad webhook for bot987654321:{REDACTED}"
    assert explain(TaskDied("the relay task stopped\nunexpectedly"), url) == "the relay task stopped unexpectedly"
    assert explain(KeyError("a bug"), url) is None
