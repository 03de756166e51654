"""``durabot run`` against a Bot API that rejects its token, a webhook port in use, and a Bot API that is not there."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


from tests.conftest import free_port
from tests.e2e.conftest import TOKEN, Bot, Process, SandboxClient, base_env

SECRET_PART = TOKEN.split(":", 1)[1]


def one_line_failure(process: Process) -> str:
    """The process's exit status must be 2 and its output, JSON log records aside, one error line."""
    assert process.popen.wait(timeout=120) == 2, process.output()
    process.popen.wait()
    lines = [line for line in process.lines if line.strip() and not line.startswith("{")]
    assert len(lines) == 1 and lines[0].startswith("error: "), process.output()
    assert "Traceback" not in process.output()
    return lines[0]


def test_a_token_the_server_rejects_is_one_line_naming_only_the_bot_id(bot: Bot, sandbox: SandboxClient) -> None:
    sandbox.fault(method="getMe", status=401, count=10)
    process = bot.start(wait="")
    line = one_line_failure(process)
    assert line == f"error: the Bot API at {sandbox.url} rejected TELEGRAM_BOT_TOKEN (bot 424242): check the token @BotFather gave you"
    assert SECRET_PART not in process.output()


def test_a_webhook_port_in_use_is_one_line_not_a_database_problem(bot: Bot, taken_port: int) -> None:
    process = bot.start(
        wait="",
        WEBHOOK_URL=f"http://127.0.0.1:{taken_port}/telegram/webhook",
        WEBHOOK_SECRET="s3cret-Token_1",
        WEBHOOK_LISTEN_HOST="127.0.0.1",
        WEBHOOK_LISTEN_PORT=str(taken_port),
    )
    line = one_line_failure(process)
    assert f"port {taken_port} is already in use" in line and "WEBHOOK_LISTEN_PORT" in line
    assert "database" not in line


def test_an_unreachable_bot_api_is_a_warning_per_retry_and_sigterm_still_stops_the_wait(tmp_path: Path) -> None:
    settings = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
    }
    process = Process([sys.executable, "-m", "durabot", "run"], base_env(**settings))
    try:
        process.wait_for('"attempt": 2')
        warnings = process.events("service.bot_api_unreachable")
        assert [w["level"] for w in warnings[:2]] == ["warning", "warning"]
        assert warnings[0]["api"] == settings["TELEGRAM_API_BASE_URL"]
        process.popen.send_signal(signal.SIGTERM)
        assert process.popen.wait(timeout=60) == 0
    finally:
        if process.popen.poll() is None:
            process.popen.kill()
    assert SECRET_PART not in process.output()


def test_usage_names_the_command_durabot_even_under_python_m(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "durabot"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "Usage: durabot" in result.stdout + result.stderr
