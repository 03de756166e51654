"""The cost of durabot's one INFO line per applied step, measured alone, away from the noise of a whole step.

The engine writes ``engine.update_applied`` once per step. Here the same event, with the same
fields, goes through durabot's own logging set-up (structlog, the redacting processors, JSON,
the standard library's handler) to a null stream, as many times as fit in the run.
"""

from __future__ import annotations

import time
from typing import TextIO

import structlog

from common import Run
from durabot.logs import configure_logging


def info_lines(stream: TextIO, seconds: float) -> Run:
    """Log ``engine.update_applied`` at INFO for ``seconds``; one operation is one line written.

    Leaves durabot's logging at WARNING, as the suite runs everything else.
    """
    configure_logging(level="INFO", fmt="json", stream=stream)
    log = structlog.get_logger("durabot.engine")
    lines = 0
    cpu, started = time.process_time(), time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            for _ in range(100):
                log.info("engine.update_applied", update_id=lines, chat_id=1_000_000_123, messages=1, ms=4.2)
                lines += 1
    finally:
        elapsed, spent = time.perf_counter() - started, time.process_time() - cpu
        configure_logging(level="WARNING", fmt="json", stream=stream)
    return Run(lines, elapsed, spent)
