"""Through the real ``durabot`` command: every start-up failure is one line on standard error and exit status 2, no traceback, no secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from durabot import __version__
from tests.conftest import free_port, require_postgres

SETTINGS_PREFIXES = ("DATABASE_URL", "TELEGRAM_", "WEBHOOK_", "LOG_", "SANDBOX_", "DURABOT_FAILPOINTS")
PG_SERVER = "127.0.0.1:5432"


def durabot(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run ``durabot`` in ``cwd`` (no ``.env`` there) with only ``settings`` configured, JSON logs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(SETTINGS_PREFIXES)}
    env.update({"LOG_FORMAT": "json", "COLUMNS": "60", **settings})
    return subprocess.run(
        [sys.executable, "-m", "durabot", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def failure_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed start printed besides its JSON log records; checks the exit status too."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert len(lines) == 1, result.stderr
    assert result.returncode == 2, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def postgres() -> None:
    require_postgres()


@pytest.mark.postgres
@pytest.mark.parametrize("command", [["migrate"], ["cleanup"], ["repair", "orphans"], ["run"]])
def test_an_unknown_postgresql_database_is_one_line(postgres: None, tmp_path: Path, command: list[str]) -> None:
    result = durabot(*command, cwd=tmp_path, DATABASE_URL=f"postgresql://postgres@{PG_SERVER}/no_such_db")
    line = failure_line(result)
    assert 'database "no_such_db" does not exist' in line
    assert "cannot use the database postgresql+asyncpg://postgres@127.0.0.1:5432/no_such_db" in line


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["migrate", "run"])
def test_an_unknown_postgresql_role_is_one_line(postgres: None, tmp_path: Path, command: str) -> None:
    result = durabot(command, cwd=tmp_path, DATABASE_URL=f"postgresql://no_such_role@{PG_SERVER}/test")
    assert 'role "no_such_role" does not exist' in failure_line(result)


@pytest.mark.parametrize("command", ["migrate", "cleanup"])
def test_a_database_that_cannot_be_reached_ends_a_one_shot_command_in_one_line_without_its_password(
    tmp_path: Path, command: str
) -> None:
    port = free_port()
    result = durabot(command, cwd=tmp_path, DATABASE_URL=f"postgresql://durabot:pa55word@127.0.0.1:{port}/test")
    line = failure_line(result)
    assert f"cannot reach the database postgresql+asyncpg://durabot:***@127.0.0.1:{port}/test" in line
    assert "pa55word" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", ["migrate", "run"])
def test_a_sqlite_file_in_a_missing_folder_is_one_line(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    result = durabot(command, cwd=tmp_path, DATABASE_URL=f"sqlite:///{missing}/durabot.sqlite3")
    assert f"folder {missing} does not exist" in failure_line(result)
    assert not (tmp_path / "no").exists()


def test_an_unknown_log_level_is_refused_by_the_configuration_check(tmp_path: Path) -> None:
    result = durabot("run", cwd=tmp_path, LOG_LEVEL="bogus")
    line = failure_line(result)
    assert "LOG_LEVEL" in line and "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'" in line


@pytest.mark.parametrize("token", ["AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "123456:has spaces-Secret", "12ab:Secret"])
def test_a_malformed_token_is_refused_by_the_configuration_check_without_showing_it(tmp_path: Path, token: str) -> None:
    result = durabot("run", cwd=tmp_path, TELEGRAM_BOT_TOKEN=token)
    line = failure_line(result)
    assert "TELEGRAM_BOT_TOKEN: is not a bot token" in line
    assert "Secret" not in line and "AAHdq" not in line


def test_the_sandbox_port_in_use_is_said_as_such(tmp_path: Path, taken_port: int) -> None:
    database = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    result = durabot("run", cwd=tmp_path, DATABASE_URL=database, SANDBOX_PORT=str(taken_port))
    line = failure_line(result)
    assert f"port {taken_port} is already in use" in line and "SANDBOX_PORT" in line
    assert "database" not in line


def test_the_sandbox_command_on_a_port_in_use_is_one_line(tmp_path: Path, taken_port: int) -> None:
    result = durabot("sandbox", "--port", str(taken_port), cwd=tmp_path)
    assert f"port {taken_port} is already in use" in failure_line(result)


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    result = durabot("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"durabot {__version__}")
    assert __version__ != "0+unknown"
