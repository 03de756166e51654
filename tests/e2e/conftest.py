"""End-to-end harness: the real ``durabot run`` process and a sandbox process, talking HTTP."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

TOKEN = "424242:e2e-token"
T = TypeVar("T")


def wait_until(check: Callable[[], T | None], what: str, seconds: float = 30) -> T:
    """Poll ``check`` until it returns something truthy (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


class Process:
    """A child process whose output lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    def events(self, name: str) -> list[dict[str, Any]]:
        """Logged JSON events called ``name``."""
        found = []
        for line in list(self.lines):
            if line.startswith("{") and f'"{name}"' in line:
                record = json.loads(line)
                if record.get("event") == name:
                    found.append(record)
        return found

    def wait_for(self, text: str, seconds: float = 60) -> str:
        def seen() -> str | None:
            if self.popen.poll() is not None and not any(text in line for line in self.lines):
                raise AssertionError(f"process exited ({self.popen.returncode}) before {text!r}:\n" + self.output())
            return next((line for line in list(self.lines) if text in line), None)

        return wait_until(seen, repr(text), seconds)

    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    def kill9_expected(self, seconds: float = 60) -> None:
        """Wait for a process armed with a failpoint to die by SIGKILL."""
        code = self.popen.wait(timeout=seconds)
        assert code == -9, f"expected death by SIGKILL, got {code}:\n{self.output()}"

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DURABOT_FAILPOINTS", "WEBHOOK_", "TELEGRAM_"))}
    env.update({"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "INBOX_POLL_SECONDS": "0.1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


class SandboxClient:
    """The sandbox's test API, as a test (or a person) would use it."""

    def __init__(self, url: str, token: str = TOKEN) -> None:
        self.url = url
        self.http = httpx.Client(base_url=f"{url}/sandbox/api/{token}", timeout=30)

    def say(self, chat_id: int, text: str, user_id: int | None = None) -> int:
        body = {"type": "message", "chat_id": chat_id, "user_id": user_id or chat_id, "text": text}
        return int(self.http.post("/updates", json=body).json()["update_id"])

    def send_photo(self, chat_id: int) -> int:
        body = {"type": "photo", "chat_id": chat_id, "user_id": chat_id}
        return int(self.http.post("/updates", json=body).json()["update_id"])

    def press(self, chat_id: int, label: str) -> int:
        """Press the button labelled ``label`` on the bot's latest message that has it."""
        for message in reversed(self.bot_messages(chat_id)):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if button["text"] == label:
                        body = {
                            "type": "callback",
                            "chat_id": chat_id,
                            "user_id": chat_id,
                            "message_id": message["message_id"],
                            "data": button["callback_data"],
                        }
                        return int(self.http.post("/updates", json=body).json()["update_id"])
        raise AssertionError(f"no button {label!r} in chat {chat_id}")

    def redeliver(self, update_id: int) -> None:
        self.http.post("/redeliver", json={"update_id": update_id}).raise_for_status()

    def fault(self, **fault: Any) -> None:
        self.http.post("/faults", json=fault).raise_for_status()

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        return list(self.http.get("/messages", params={"chat_id": chat_id}).json()["messages"])

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages(chat_id) if m["from_bot"]]

    def bot_texts(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.bot_messages(chat_id)]

    def calls(self, method: str) -> list[dict[str, Any]]:
        return list(self.http.get("/calls", params={"method": method}).json()["calls"])

    def callback_answers(self) -> list[dict[str, Any]]:
        return list(self.http.get("/callback_answers").json()["callback_answers"])

    def wait_for_reply(self, chat_id: int, count: int, seconds: float = 30) -> list[str]:
        """Wait until the bot has sent ``count`` messages to the chat; returns their texts."""
        def enough() -> list[str] | None:
            texts = self.bot_texts(chat_id)
            return texts if len(texts) >= count else None

        return wait_until(enough, f"{count} replies", seconds)


@pytest.fixture
def sandbox() -> Iterator[SandboxClient]:
    process = Process([sys.executable, "-m", "durabot", "sandbox", "--port", "0"], base_env())
    try:
        line = process.wait_for("chat page at", 30)
        url = line.split("chat page at", 1)[1].strip().rstrip("/")
        yield SandboxClient(url)
    finally:
        process.stop()


class Bot:
    """Starts and restarts ``durabot run`` against the sandbox, on one database."""

    def __init__(self, sandbox: SandboxClient, database_url: str, tmp_path: Path) -> None:
        self.sandbox = sandbox
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.processes: list[Process] = []

    def start(self, wait: str = "polling.started", **env: str) -> Process:
        settings = {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": self.sandbox.url,
            "DATABASE_URL": self.database_url,
            **env,
        }
        process = Process([sys.executable, "-m", "durabot", "run"], base_env(**settings))
        self.processes.append(process)
        if wait:
            process.wait_for(wait)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "e2e.sqlite3"


@pytest.fixture
def bot(sandbox: SandboxClient, sqlite_path: Path, tmp_path: Path) -> Iterator[Bot]:
    runner = Bot(sandbox, f"sqlite:///{sqlite_path}", tmp_path)
    try:
        yield runner
    finally:
        runner.stop_all()


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the bot's SQLite database directly."""
    with sqlite3.connect(path) as connection:
        return list(connection.execute(sql).fetchall())
