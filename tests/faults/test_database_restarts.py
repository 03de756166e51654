"""Real ``durabot run`` workers while their PostgreSQL crashes and restarts: nothing failed, lost, doubled or stalled."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from durabot.engine.runner import APOLOGY
from tests.e2e.conftest import Bot, Process, SandboxClient, wait_until
from tests.faults.conftest import Cluster

pytestmark = pytest.mark.faults

CHATS = range(7101, 7107)
MAX_POLLING_GAP_SECONDS = 10.0
"""The issue's bound: after the database is back, no longer than this without a ``getUpdates``."""

PROMPTS = [f"Step {n} of 6" for n in range(1, 7)]

REPLY_GUARD_SECONDS = 90.0
"""A hang guard for replies that wait out an outage, not a timing."""


def answers(chat: int) -> list[str]:
    """The add-machine conversation of one chat: the command, then nickname, manufacturer, model, serial, location, notes."""
    return ["/addmachine", f"Lathe {chat}", "Haas", f"VF-{chat}", f"SN-{chat}", "Hall B", "oil weekly"]


def _at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(record["timestamp"]))


def leadership(worker: Process) -> list[tuple[datetime, datetime | None]]:
    """When the worker polled: from each ``polling.started`` to the ``polling.stepped_down`` after it (if any)."""
    marks = sorted(
        [(_at(r), "start") for r in worker.events("polling.started")]
        + [(_at(r), "stop") for r in worker.events("polling.stepped_down")]
    )
    spans: list[tuple[datetime, datetime | None]] = []
    for when, what in marks:
        if what == "start":
            spans.append((when, None))
        elif spans and spans[-1][1] is None:
            spans[-1] = (spans[-1][0], when)
    return spans


def overlaps(a: tuple[datetime, datetime | None], b: tuple[datetime, datetime | None]) -> bool:
    far = datetime.max.replace(tzinfo=a[0].tzinfo)
    return a[0] < (b[1] or far) and b[0] < (a[1] or far)


def polling_holes(calls: list[dict[str, Any]], since: float) -> list[float]:
    """Seconds without ``getUpdates`` after ``since``: before the first call, and between one call's longest
    possible end (its start plus its long-poll timeout) and the next call's start."""
    starts = sorted((float(c["at"]), float(c["params"].get("timeout") or 0)) for c in calls if float(c["at"]) > since)
    if not starts:
        return [float("inf")]
    holes = [starts[0][0] - since]
    holes += [later - (start + timeout) for (start, timeout), (later, _) in zip(starts, starts[1:])]
    return holes


def say_to_every_chat(sandbox: SandboxClient, step: int) -> None:
    for chat in CHATS:
        sandbox.say(chat, answers(chat)[step])


def wait_for_every_chat(sandbox: SandboxClient, replies: int) -> None:
    for chat in CHATS:
        sandbox.wait_for_reply(chat, replies, seconds=REPLY_GUARD_SECONDS)


def test_two_workers_ride_out_database_crashes_mid_conversation(
    sandbox: SandboxClient, cluster: Cluster, tmp_path: Path
) -> None:
    workers = Bot(sandbox, cluster.url, tmp_path)
    try:
        first = workers.start()
        second = workers.start(wait="service.started")
        for step in range(len(answers(0))):
            say_to_every_chat(sandbox, step)
            if step == 2:  # crash while the answers are being taken in, stay down a while
                cluster.restart(down_seconds=3.0)
            if step == 4:  # crash while the replies are going out, come straight back
                wait_until(lambda: any(len(sandbox.bot_texts(c)) > step for c in CHATS), "a first reply", 60)
                cluster.restart(down_seconds=0.3)
            wait_for_every_chat(sandbox, step + 1)
        processes = [first, second]

        # Nothing failed, nothing was apologised for, every answer is stored.
        assert cluster.query("SELECT outcome, count(*) FROM telegram_updates GROUP BY outcome") == [
            ("applied", len(CHATS) * len(answers(0)))
        ]
        machines = cluster.query(
            "SELECT user_id, nickname, manufacturer, model_number, serial_number, location, notes FROM user_machines"
        )
        assert sorted(machines) == [(chat, *answers(chat)[1:]) for chat in CHATS]

        # Every reply exactly once and in order: no worker died, so nothing was sent twice.
        for chat in CHATS:
            texts = sandbox.bot_texts(chat)
            assert APOLOGY not in texts
            assert [text.split(" · ")[0] for text in texts[:-1]] == PROMPTS, texts
            assert texts[-1].startswith(f"Saved “Lathe {chat}”"), texts
        sent = [c for c in sandbox.calls("sendMessage") if c["status"] == 200]
        assert len(sent) == len(CHATS) * len(answers(0))

        # Never two pollers: no worker was told Conflict, leadership spans never overlap, and every 409
        # the sandbox answered went to a long poll that a worker had abandoned when it lost its lease.
        assert not [e for p in processes for e in p.events("polling.conflict")]
        spans = [leadership(p) for p in processes]
        assert not [(a, b) for a in spans[0] for b in spans[1] if overlaps(a, b)], spans
        conflicts = [c for c in sandbox.calls("getUpdates") if c["status"] == 409]
        assert len(conflicts) <= sum(len(p.events("polling.lease_lost")) for p in processes)

        # Exactly one worker polls now, and polling resumed promptly after each restart.
        assert [bool(s) and s[-1][1] is None for s in spans].count(True) == 1, spans
        assert sum(len(p.events("polling.lease_lost")) for p in processes) >= 2, "each crash cost the leader its lease"
        for back in cluster.started_at[1:]:
            holes = polling_holes(sandbox.calls("getUpdates"), since=back)
            assert max(holes) <= MAX_POLLING_GAP_SECONDS, holes

        warned = [e for p in processes for e in p.lines if '"level": "warning"' in e and "unavailable" in e]
        assert warned, "the outages were seen, and reported as warnings"
        assert not [line for p in processes for line in p.lines if '"level": "error"' in line]
    finally:
        workers.stop_all()


def test_a_worker_started_while_the_database_is_down_waits_and_then_serves(
    sandbox: SandboxClient, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.crash()
    worker = Bot(sandbox, cluster.url, tmp_path).start(wait="service.database_unavailable")
    try:
        wait_until(lambda: len(worker.events("service.database_unavailable")) >= 2, "a second attempt", 60)
        cluster.start()
        worker.wait_for("polling.started", 60)
        chat = CHATS[0]
        for step in range(2):
            sandbox.say(chat, answers(chat)[step])
            sandbox.wait_for_reply(chat, step + 1, seconds=REPLY_GUARD_SECONDS)
        assert [text.split(" · ")[0] for text in sandbox.bot_texts(chat)] == ["Step 1 of 6", "Step 2 of 6"]
        attempts = worker.events("service.database_unavailable")
        assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
        assert {a["level"] for a in attempts} == {"warning"} and all(a["retry_in"] > 0 for a in attempts)
    finally:
        assert worker.stop() == 0
