"""The real service: ``durabot run`` against a sandbox process, fed updates at a steady rate through the sandbox's test API.

Three processes, as in production and in ``tests/e2e``: the sandbox (``python -m durabot
sandbox --port 0``), the bot (``python -m durabot run``, long polling, on a PostgreSQL database of
its own, created here and dropped afterwards) and this driver. The driver posts add-machine
conversations in many chats at a fixed rate (open loop: it never waits for the bot) and notes
the time just before each post. Afterwards the bot's own database says when each update was
applied (``telegram_updates.processed_at``, the wall clock all three processes share), and the
sandbox's record of Bot API calls says when each reply's ``sendMessage`` reached it (the
system-wide monotonic clock). Each add-machine step sends one reply, so a chat's replies pair
with its updates in order.

The send limits are lifted with ``TELEGRAM_GLOBAL_RATE=0`` and ``TELEGRAM_CHAT_RATE=0``; the
figures say whether this version of durabot knows those settings.

Run alone with ``.venv/bin/python bench/end_to_end.py [seconds] [rate]``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp
import asyncpg

from common import ANSWERS, asyncpg_dsn, percentile, throwaway_database
from durabot.config import Settings

TOKEN = "424242:bench"
BOT_ID = 424242
RATE_SETTINGS = {"TELEGRAM_GLOBAL_RATE": "0", "TELEGRAM_CHAT_RATE": "0"}
SECONDS_BETWEEN_A_CHATS_UPDATES = 2.0
"""Each chat gets its next update this long after the previous one, so "many chats" is rate × this."""


def rate_settings_known() -> bool:
    """Whether durabot's settings have the send-rate fields (they are ignored otherwise)."""
    return {name.lower() for name in RATE_SETTINGS} <= set(Settings.model_fields)


class ChildProcess:
    """A child process writing its output to a file, stopped by its own handle."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[str] = log_path.open("w")
        self.popen = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT, text=True)

    def wait_for(self, text: str, seconds: float = 60) -> str:
        """The first output line containing ``text``, waiting for it (a hang guard, not a timing)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if text in line:
                    return line
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{self.popen.args!r} did not print {text!r} (exit status {self.popen.poll()}):\n{tail}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_memory_mib(self) -> float:
        """The process's peak resident memory so far (``VmHWM``), in MiB."""
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        """Ask the process to stop (SIGTERM), and kill it if it has not within 30 s."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without durabot's own settings, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DURABOT_FAILPOINTS", "WEBHOOK_", "TELEGRAM_"))}
    env.update({"LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **extra})
    return env


@dataclass
class EndToEnd:
    """What one end-to-end run measured (latencies in ms)."""

    offered: int
    offered_rate: float
    applied: int
    applied_rate: float
    replied: int
    replied_rate: float
    applied_p50: float
    applied_p99: float
    in_bot_p50: float
    in_bot_p99: float
    reply_p50: float
    reply_p99: float
    bot_cpu_ms: float
    rate_settings_known: bool
    bot_peak_mib: float = 0.0
    unfinished: str = ""
    unpaired_chats: int = 0


@dataclass(frozen=True)
class Posted:
    """One update the driver posted: to which chat, and when (wall clock, and the system-wide monotonic clock)."""

    chat: int
    wall: float
    monotonic: float


def schedule(count: int, chats: int) -> list[tuple[int, str]]:
    """``count`` (chat, text) pairs: ``chats`` conversations in flight, round robin, a new chat once one is complete."""
    plan = []
    for index in range(count):
        slot, turn = index % chats, index // chats
        conversation, step = divmod(turn, len(ANSWERS))
        plan.append((3_000_000 + conversation * chats + slot, ANSWERS[step]))
    return plan


async def feed(api: str, plan: list[tuple[int, str]], rate: float) -> tuple[dict[int, Posted], float]:
    """Post ``plan`` to the sandbox's test API at ``rate`` per second; returns each update's post, and the seconds taken."""
    posted: dict[int, Posted] = {}
    async with aiohttp.ClientSession() as http:

        async def post(chat: int, text: str) -> None:
            wall, monotonic = time.time(), time.monotonic()
            body = {"type": "message", "chat_id": chat, "user_id": chat, "text": text}
            async with http.post(f"{api}/updates", json=body) as response:
                posted[int((await response.json())["update_id"])] = Posted(chat, wall, monotonic)

        tasks = []
        started = time.perf_counter()
        for index, (chat, text) in enumerate(plan):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(chat, text)))
        await asyncio.gather(*tasks)
        return posted, time.perf_counter() - started


async def sandbox_replies(api: str) -> dict[int, list[float]]:
    """When the sandbox received each successful ``sendMessage``, by chat, in order (its monotonic clock, system-wide)."""
    async with aiohttp.ClientSession() as http, http.get(f"{api}/calls", params={"method": "sendMessage"}) as response:
        calls = (await response.json())["calls"]
    replies: dict[int, list[float]] = {}
    for call in calls:
        if call["status"] == 200:
            replies.setdefault(int(str(call["params"]["chat_id"])), []).append(float(call["at"]))
    return replies


async def wait_until_done(connection: asyncpg.Connection, updates: int, seconds: float) -> str:
    """Wait until every update is applied and every reply sent, for at most ``seconds``; says what is left if not."""
    deadline = time.monotonic() + seconds
    while True:
        applied = await connection.fetchval("SELECT count(*) FROM telegram_updates WHERE processed_at IS NOT NULL")
        unsent = await connection.fetchval("SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL")
        if applied >= updates and unsent == 0:
            return ""
        if time.monotonic() > deadline:
            return f"after {seconds:.0f} s: {updates - applied} updates not applied, {unsent} replies not sent"
        await asyncio.sleep(0.2)


TIMINGS = """
    SELECT update_id, extract(epoch FROM received_at), extract(epoch FROM processed_at)
    FROM telegram_updates WHERE bot_id = $1 AND processed_at IS NOT NULL
"""


def applied_latencies(posted: dict[int, Posted], rows: list[Any]) -> tuple[list[float], list[float], float]:
    """Post→applied and inbox receipt→applied, in ms, and when the last update was applied (wall clock)."""
    applied, in_bot, last = [], [], 0.0
    for update_id, received_at, processed_at in rows:
        if (post := posted.get(update_id)) is not None:
            applied.append((float(processed_at) - post.wall) * 1000)
            in_bot.append((float(processed_at) - float(received_at)) * 1000)
            last = max(last, float(processed_at))
    return applied, in_bot, last


def reply_latencies(posted: dict[int, Posted], replies: dict[int, list[float]]) -> tuple[list[float], float, int]:
    """Post→reply at the sandbox, in ms, pairing each chat's updates and replies in order (one reply per add-machine step).

    Returns the latencies, the last reply's time (monotonic) and how many chats had not as many replies as updates.
    """
    updates: dict[int, list[int]] = {}
    for update_id in sorted(posted):
        updates.setdefault(posted[update_id].chat, []).append(update_id)
    latencies, last, unpaired = [], 0.0, 0
    for chat, ids in updates.items():
        received = replies.get(chat, [])
        unpaired += len(received) != len(ids)
        for update_id, at in zip(ids, received, strict=False):
            latencies.append((at - posted[update_id].monotonic) * 1000)
            last = max(last, at)
    return latencies, last, unpaired


def summarise(posted: dict[int, Posted], rows: list[Any], replies: dict[int, list[float]], feeding: float) -> EndToEnd:
    """The figures from the posts, the bot's database and the sandbox's record of calls."""
    applied, in_bot, last_applied = applied_latencies(posted, rows)
    replied, last_reply, unpaired = reply_latencies(posted, replies)
    first_wall = min((post.wall for post in posted.values()), default=0.0)
    first_monotonic = min((post.monotonic for post in posted.values()), default=0.0)
    applied_span, reply_span = last_applied - first_wall, last_reply - first_monotonic
    return EndToEnd(
        offered=len(posted), offered_rate=len(posted) / feeding if feeding else 0.0,
        applied=len(applied), applied_rate=len(applied) / applied_span if applied_span > 0 else 0.0,
        replied=len(replied), replied_rate=len(replied) / reply_span if reply_span > 0 else 0.0,
        applied_p50=percentile(applied, 0.5), applied_p99=percentile(applied, 0.99),
        in_bot_p50=percentile(in_bot, 0.5), in_bot_p99=percentile(in_bot, 0.99),
        reply_p50=percentile(replied, 0.5), reply_p99=percentile(replied, 0.99),
        bot_cpu_ms=0.0, rate_settings_known=rate_settings_known(), unpaired_chats=unpaired,
    )


async def run_end_to_end(seconds: float, rate: float) -> EndToEnd:
    """Start the sandbox and the bot, feed ``rate`` updates/s for ``seconds``, wait for the replies, measure."""
    count = int(seconds * rate)
    plan = schedule(count, max(8, int(rate * SECONDS_BETWEEN_A_CHATS_UPDATES)))
    async with throwaway_database("durabot_bench_e2e") as database_url:
        with tempfile.TemporaryDirectory(prefix="durabot-bench-e2e-") as folder:
            sandbox_args = [sys.executable, "-m", "durabot", "sandbox", "--port", "0"]
            sandbox = ChildProcess(sandbox_args, child_env(), Path(folder) / "sandbox.log")
            bot: ChildProcess | None = None
            try:
                url = sandbox.wait_for("chat page at", 30).split("chat page at", 1)[1].strip().rstrip("/")
                settings = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": url, "DATABASE_URL": database_url}
                settings["JOURNAL_PATH"] = os.environ.get("BENCH_JOURNAL", str(Path(folder) / "journal.sqlite3"))
                bot_env = child_env(**settings, **RATE_SETTINGS)
                bot = ChildProcess([sys.executable, "-m", "durabot", "run"], bot_env, Path(folder) / "bot.log")
                bot.wait_for("polling.started", 60)
                api = f"{url}/sandbox/api/{TOKEN}"
                connection = await asyncpg.connect(asyncpg_dsn(database_url))
                try:
                    cpu_before = bot.cpu_seconds()
                    posted, feeding = await feed(api, plan, rate)
                    unfinished = await wait_until_done(connection, count, max(30.0, 2 * seconds))
                    bot_cpu = bot.cpu_seconds() - cpu_before
                    rows = await connection.fetch(TIMINGS, BOT_ID)
                finally:
                    await connection.close()
                result = summarise(posted, rows, await sandbox_replies(api), feeding)
                result.unfinished = unfinished
                result.bot_cpu_ms = bot_cpu * 1000 / result.applied if result.applied else 0.0
                result.bot_peak_mib = bot.peak_memory_mib()
                return result
            finally:
                if bot is not None:
                    bot.stop()
                sandbox.stop()


def describe(result: EndToEnd) -> list[str]:
    """The figures as lines of text."""
    limits = (
        "are settings of this durabot" if result.rate_settings_known
        else "are NOT settings of this durabot (the relay keeps its built-in 30/s overall, 1/s per chat)"
    )
    lines = [
        f"offered {result.offered} updates at {result.offered_rate:.0f}/s; applied {result.applied} "
        f"at {result.applied_rate:.0f}/s; {result.replied} replies reached the sandbox at {result.replied_rate:.0f}/s",
        f"update→applied p50 {result.applied_p50:.0f} ms, p99 {result.applied_p99:.0f} ms "
        f"(inbox receipt→applied p50 {result.in_bot_p50:.0f} ms, p99 {result.in_bot_p99:.0f} ms)",
        f"update→reply (its sendMessage reaching the sandbox) p50 {result.reply_p50:.0f} ms, p99 {result.reply_p99:.0f} ms",
        f"bot process: CPU {result.bot_cpu_ms:.1f} ms per update, peak RSS {result.bot_peak_mib:.0f} MiB",
        f"TELEGRAM_GLOBAL_RATE=0 / TELEGRAM_CHAT_RATE=0 {limits}",
    ]
    if result.unfinished:
        lines.append(f"unfinished {result.unfinished}")
    if result.unpaired_chats:
        lines.append(f"{result.unpaired_chats} chats had not one reply per update: their replies were paired in order as far as they went")
    return lines


if __name__ == "__main__":
    seconds, rate = (float(sys.argv[1]) if len(sys.argv) > 1 else 15.0), (float(sys.argv[2]) if len(sys.argv) > 2 else 200.0)
    outcome = asyncio.run(run_end_to_end(seconds, rate))
    print("\n".join(describe(outcome)))
