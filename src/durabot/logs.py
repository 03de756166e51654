"""Structured logging set-up: readable on a console, one JSON object per line with LOG_FORMAT=json, nothing secret in either.

Every line, durabot's own events and other libraries' records alike, passes through the
process's :mod:`redactor <durabot.redaction>` after exceptions are rendered, so a bot token,
the webhook secret, the database password or a value quoted in a database error never
reaches the output. Libraries that log request bodies, SQL rows or call arguments are kept
at WARNING even with LOG_LEVEL=DEBUG: what they would print is personal data.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog

from durabot.redaction import redact, register_secrets

QUIET_LIBRARIES = (
    "httpx",  # request lines with the bot token in the URL
    "httpcore",
    "telegram",  # Bot API parameters at DEBUG: message texts, the setWebhook secret
    "sqlalchemy",  # SQL and result rows at INFO/DEBUG
    "aiosqlite",  # every call with its arguments at DEBUG
    "asyncpg",
    "aiohttp.access",
    "asyncio",
)
"""Libraries whose INFO and DEBUG lines would drown durabot's own events or carry personal data."""

BODY_LOGGERS = ("telegram.request",)
"""Libraries whose log arguments, even at ERROR, may be whole response bodies (``getUpdates``: users' messages)."""

HIDDEN_ARGUMENT = "[not logged]"


def redact_event(_logger: Any, _method: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """A structlog processor that redacts every string in the event, rendered tracebacks included."""
    return {key: _redacted(value) for key, value in event_dict.items()}


def _redacted(value: Any) -> Any:
    """Strings redacted, containers walked, and any other object as its redacted ``repr`` (as the renderers would show it)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return redact(repr(value))


class RedactingFilter(logging.Filter):
    """Redacts the message of a standard-library record (httpx, python-telegram-bot…) before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, dict):  # structlog's own events are redacted by its processors
            if record.name.startswith(BODY_LOGGERS) and isinstance(record.args, tuple) and record.args:
                record.args = tuple(HIDDEN_ARGUMENT for _ in record.args)
            record.msg = redact(record.getMessage())
            record.args = ()
        return True


def configure_logging(
    level: str = "INFO",
    fmt: str = "console",
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> None:
    """Send structlog's events and the standard library's records through one redacting renderer.

    Args:
        level: The lowest level written (``DEBUG`` … ``CRITICAL``).
        fmt: ``console`` for people, ``json`` for one JSON object per line.
        secrets: Values never to be written (see :meth:`durabot.config.Settings.secret_values`).
        stream: Where to write; standard error by default.
    """
    register_secrets(secrets)
    output = stream or sys.stderr
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(output)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(_formatter(fmt, shared, colors=output.isatty()))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric_level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))


def _formatter(fmt: str, shared: list[structlog.typing.Processor], colors: bool) -> structlog.stdlib.ProcessorFormatter:
    """Tracebacks are rendered to text first, so that they are redacted like every other value before the line is rendered."""
    renderer: structlog.typing.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
    )
