"""A fixture that runs durabot's real logging set-up into a buffer, and puts the process's logging back afterwards."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import structlog

from durabot.logs import QUIET_LIBRARIES, configure_logging

TOUCHED_LOGGERS = (*QUIET_LIBRARIES, "telegram", "httpx", "sqlalchemy.engine")


class CapturedLogs:
    """What :func:`configure_logging` wrote, as text and as JSON records."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def configure(self, level: str = "DEBUG", fmt: str = "json", secrets: Iterable[str | None] = ()) -> None:
        """Set logging up exactly as ``durabot run`` does, writing to this buffer."""
        configure_logging(level, fmt, secrets, stream=self.stream)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every line, parsed (JSON format only)."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record.get("event") == name]


@pytest.fixture
def captured_logs() -> Iterator[CapturedLogs]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in TOUCHED_LOGGERS}
    try:
        yield CapturedLogs()
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        structlog.reset_defaults()
