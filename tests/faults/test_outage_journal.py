"""Outage mode (G8) with a real ``durabot run``: the primary goes away mid-flow, users finish, the journal replays."""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from durabot.journal.notice import NOT_SAVED
from tests.e2e.conftest import Bot, Process, SandboxClient, wait_until
from tests.faults.conftest import Cluster
from tests.integration.intake_answers import ALL

pytestmark = pytest.mark.faults

MACHINE_CHAT, INTAKE_CHAT = 7301, 7302
MACHINE = ["/addmachine", "Press 12", "Haas", "VF-2", "SN-77", "Bay 4", "greased monthly"]
BUTTONS = {"yes": "Yes", "no": "No", "doctorate": "Doctorate", "none": "None"}
GUARD_SECONDS = 60.0
"""A hang guard, not a timing."""


def start_worker(sandbox: SandboxClient, cluster: Cluster, tmp_path: Path) -> tuple[Bot, Process, Path]:
    journal = tmp_path / "journal.sqlite3"
    bot = Bot(sandbox, cluster.url, tmp_path)
    worker = bot.start(JOURNAL_PATH=str(journal), OUTAGE_GRACE_SECONDS="1", TELEGRAM_CHAT_RATE="0")
    worker.wait_for("journal.ready")
    return bot, worker, journal


class Conversation:
    """One chat's answers, sent one at a time, each waiting for the bot's reply."""

    def __init__(self, sandbox: SandboxClient, chat: int, steps: list[str]) -> None:
        self.sandbox, self.chat, self.steps, self.sent = sandbox, chat, steps, 0
        self.notices = 0
        """Messages the bot sent that answer no step (a "can't save right now")."""

    def advance(self, count: int) -> None:
        for text in self.steps[self.sent : self.sent + count]:
            if text in BUTTONS.values() and self.sent:
                self.sandbox.press(self.chat, text)
            else:
                self.sandbox.say(self.chat, text)
            self.sent += 1
            self.sandbox.wait_for_reply(self.chat, self.sent + self.notices, seconds=GUARD_SECONDS)

    def finish(self) -> None:
        self.advance(len(self.steps) - self.sent)


def journal_counts(journal: Path) -> dict[str, int]:
    with sqlite3.connect(journal) as connection:
        return {
            table: int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("journal_steps", "telegram_updates", "outbox_messages")
        }


def test_both_flows_finish_while_postgresql_is_down_and_are_replayed_once(
    sandbox: SandboxClient, cluster: Cluster, tmp_path: Path
) -> None:
    bot, worker, journal = start_worker(sandbox, cluster, tmp_path)
    intake_steps = ["/intake_start", *(BUTTONS.get(text, text) for _, text in ALL)]
    machine, intake = Conversation(sandbox, MACHINE_CHAT, MACHINE), Conversation(sandbox, INTAKE_CHAT, intake_steps)
    try:
        machine.advance(3)
        intake.advance(4)
        cluster.crash()
        worker.wait_for("journal.engaged", GUARD_SECONDS)
        machine.finish()  # every question still comes, while the primary is down
        intake.finish()
        assert sandbox.bot_texts(MACHINE_CHAT)[-1].startswith("Saved “Press 12”")
        assert sandbox.bot_texts(INTAKE_CHAT)[-1].startswith("Thank you — your EB-1A intake is complete.")

        cluster.start()
        worker.wait_for("journal.replayed", GUARD_SECONDS)
        wait_until(lambda: not cluster.query("SELECT 1 FROM outbox_messages WHERE status <> 'sent'"), "no reply waits", 30)

        assert cluster.query(
            "SELECT user_id, nickname, manufacturer, model_number, serial_number, location, notes FROM user_machines"
        ) == [(MACHINE_CHAT, *MACHINE[1:])]
        assert cluster.query("SELECT user_id, status FROM cases") == [(INTAKE_CHAT, "intake_complete")]
        assert cluster.query("SELECT count(*) FROM case_intake_progress p JOIN cases c USING (case_id)") == [(1,)]
        assert cluster.query("SELECT count(*) FROM case_intake_progress p LEFT JOIN cases c USING (case_id) WHERE c.case_id IS NULL") == [(0,)]
        updates = len(machine.steps) + len(intake.steps)
        assert cluster.query("SELECT outcome, count(*) FROM telegram_updates GROUP BY outcome") == [("applied", updates)]
        assert cluster.query("SELECT count(*) FROM conversation_states") == [(0,)]
        assert journal_counts(journal) == {"journal_steps": 0, "telegram_updates": 0, "outbox_messages": 0}

        # Every reply went out once: one text per answer, and no sendMessage twice for the same text.
        for chat, conversation in ((MACHINE_CHAT, machine), (INTAKE_CHAT, intake)):
            assert len(sandbox.bot_texts(chat)) == len(conversation.steps)
        replayed = worker.events("journal.replayed")[-1]
        assert replayed["conflicts"] == 0 and replayed["replies_to_send"] == 0
        assert not [line for line in worker.lines if '"level": "error"' in line]
    finally:
        bot.stop_all()


def cut_off(cluster: Cluster, role: str) -> None:
    """The primary stays up but refuses ``role`` (as a network partition would, for that worker alone)."""
    cluster.query(f"ALTER ROLE {role} CONNECTION LIMIT 0")
    cluster.query(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")


def reconnect(cluster: Cluster, role: str) -> None:
    cluster.query(f"ALTER ROLE {role} CONNECTION LIMIT -1")


def test_a_nickname_taken_in_the_primary_meanwhile_is_asked_for_again_after_replay(
    sandbox: SandboxClient, cluster: Cluster, tmp_path: Path
) -> None:
    cluster.query("CREATE ROLE worker LOGIN")
    cluster.query("ALTER DATABASE durabot OWNER TO worker")
    bot = Bot(sandbox, cluster.url.replace("postgres@", "worker@"), tmp_path)
    worker = bot.start(JOURNAL_PATH=str(tmp_path / "journal.sqlite3"), OUTAGE_GRACE_SECONDS="1", TELEGRAM_CHAT_RATE="0")
    machine = Conversation(sandbox, MACHINE_CHAT, MACHINE)
    try:
        machine.advance(2)
        cut_off(cluster, "worker")
        worker.wait_for("journal.engaged", GUARD_SECONDS)
        machine.finish()
        assert sandbox.bot_texts(MACHINE_CHAT)[-1].startswith("Saved “Press 12”")
        cluster.query(  # meanwhile the same user saved a "press 12" from another chat, which the primary has
            "INSERT INTO user_machines (user_id, nickname, nickname_key, manufacturer, created_at, updated_at) "
            f"VALUES ({MACHINE_CHAT}, 'press 12', 'press 12', 'Mazak', now(), now())"
        )
        reconnect(cluster, "worker")
        worker.wait_for("journal.replayed", GUARD_SECONDS)
        notice, clash = sandbox.wait_for_reply(MACHINE_CHAT, len(MACHINE) + 2, seconds=GUARD_SECONDS)[-2:]
        assert "“Press 12” turned out to be taken" in notice
        assert "You already have a machine called “press 12” (Mazak)" in clash
        assert [e["kind"] for e in worker.events("journal.conflict")] == ["nickname_taken"]

        sandbox.say(MACHINE_CHAT, "Press 13")
        saved = sandbox.wait_for_reply(MACHINE_CHAT, len(MACHINE) + 3, seconds=GUARD_SECONDS)[-1]
        assert saved.startswith("Saved “Press 13”"), saved
        assert sorted(cluster.query("SELECT nickname, manufacturer, serial_number, notes FROM user_machines")) == [
            ("Press 13", "Haas", "SN-77", "greased monthly"),
            ("press 12", "Mazak", None, None),
        ]
    finally:
        bot.stop_all()


def test_a_replay_killed_midway_finishes_after_a_restart_without_doubling_anything(
    sandbox: SandboxClient, cluster: Cluster, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite3"
    settings = {"JOURNAL_PATH": str(journal), "OUTAGE_GRACE_SECONDS": "1", "TELEGRAM_CHAT_RATE": "0"}
    bot = Bot(sandbox, cluster.url, tmp_path)
    first = bot.start(DURABOT_FAILPOINTS="journal.after_primary_commit:3", **settings)
    machine = Conversation(sandbox, MACHINE_CHAT, MACHINE)
    try:
        machine.advance(1)
        cluster.crash()
        first.wait_for("journal.engaged", GUARD_SECONDS)
        machine.finish()
        cluster.start()
        wait_until(lambda: first.popen.poll() is not None, "the worker killed during its replay", GUARD_SECONDS)
        assert journal_counts(journal)["journal_steps"] == len(MACHINE) - 1 - 2, "two steps replayed and forgotten before the kill"

        second = bot.start(**settings)
        second.wait_for("journal.replayed", GUARD_SECONDS)
        replayed = second.events("journal.replayed")[-1]
        assert replayed["already_in_primary"] == 1, replayed  # the third: in the primary, not yet out of the journal
        assert cluster.query("SELECT nickname, notes FROM user_machines") == [("Press 12", "greased monthly")]
        assert cluster.query("SELECT outcome, count(*) FROM telegram_updates GROUP BY outcome") == [("applied", len(MACHINE))]
        assert journal_counts(journal) == {"journal_steps": 0, "telegram_updates": 0, "outbox_messages": 0}
        sent = [c for c in sandbox.calls("sendMessage") if c["status"] == 200]
        assert len(sent) == len(MACHINE), "no reply sent twice"
    finally:
        bot.stop_all()


class TinyDisk:
    """A 4 MB tmpfs to keep the journal on, which the test fills up and frees again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)], check=True, capture_output=True)
        self._filler = root / "filler"

    def fill(self) -> None:
        with self._filler.open("ab") as filler:
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError as error:
                assert error.errno == errno.ENOSPC

    def free(self) -> None:
        self._filler.unlink()

    def remove(self) -> None:
        subprocess.run(["umount", "-l", str(self.root)], check=False, capture_output=True)


def test_updates_are_not_confirmed_while_the_journal_cannot_write_and_are_applied_once_it_can(
    sandbox: SandboxClient, cluster: Cluster, tmp_path: Path
) -> None:
    disk = TinyDisk(tmp_path / "disk")
    journal = disk.root / "journal.sqlite3"
    bot = Bot(sandbox, cluster.url, tmp_path)
    machine = Conversation(sandbox, MACHINE_CHAT, MACHINE)
    try:
        worker = bot.start(JOURNAL_PATH=str(journal), OUTAGE_GRACE_SECONDS="1", TELEGRAM_CHAT_RATE="0")
        machine.advance(1)
        cluster.crash()
        worker.wait_for("journal.engaged", GUARD_SECONDS)
        machine.advance(1)

        with sqlite3.connect(journal) as connection:  # from now on every journal write needs new space
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        disk.fill()
        update_id = sandbox.say(MACHINE_CHAT, MACHINE[2])
        wait_until(lambda: worker.events("polling.database_unavailable"), "the journal refusing the update", GUARD_SECONDS)
        notice = sandbox.wait_for_reply(MACHINE_CHAT, 3, seconds=GUARD_SECONDS)[-1]
        assert notice == NOT_SAVED, "told, best-effort, that nothing was taken in (and never that it was saved)"
        offsets = [c["params"].get("offset") for c in sandbox.calls("getUpdates")]
        assert max(int(o) for o in offsets if o is not None) <= update_id, "the update was not confirmed"

        disk.free()
        machine.sent, machine.notices = machine.sent + 1, 1
        reply = sandbox.wait_for_reply(MACHINE_CHAT, 4, seconds=GUARD_SECONDS)[-1]  # Telegram kept it; applied now
        assert reply.startswith("Step 3 of 6"), reply
        assert sandbox.bot_texts(MACHINE_CHAT).count(NOT_SAVED) == 1, "once a minute at most"
        machine.finish()
        cluster.start()
        worker.wait_for("journal.replayed", GUARD_SECONDS)
        assert cluster.query("SELECT nickname, manufacturer, notes FROM user_machines") == [
            ("Press 12", "Haas", "greased monthly")
        ]
        assert cluster.query("SELECT outcome, count(*) FROM telegram_updates GROUP BY outcome") == [("applied", len(MACHINE))]
        prompts = [t.split(" · ")[0] for t in sandbox.bot_texts(MACHINE_CHAT)[:-1] if t != NOT_SAVED]
        assert prompts == [f"Step {n} of 6" for n in range(1, 7)]
    finally:
        bot.stop_all()
        disk.remove()


def test_an_outage_longer_than_a_long_poll_with_two_workers_only_the_poller_journals(
    sandbox: SandboxClient, cluster: Cluster, tmp_path: Path
) -> None:
    bot = Bot(sandbox, cluster.url, tmp_path)
    settings = {"OUTAGE_GRACE_SECONDS": "1", "TELEGRAM_CHAT_RATE": "0"}
    poller = bot.start(JOURNAL_PATH=str(tmp_path / "first.sqlite3"), **settings)
    standby = bot.start(wait="journal.ready", JOURNAL_PATH=str(tmp_path / "second.sqlite3"), **settings)
    machine = Conversation(sandbox, MACHINE_CHAT, MACHINE)
    try:
        machine.advance(2)
        cluster.crash()
        poller.wait_for("journal.engaged", GUARD_SECONDS)
        machine.advance(1)
        time.sleep(27)  # longer than one getUpdates long poll (25 s), with nothing to say
        machine.finish()
        assert not standby.events("journal.engaged"), "a standby never journals: it never saw these updates"

        cluster.start()
        poller.wait_for("journal.replayed", GUARD_SECONDS)
        assert cluster.query("SELECT nickname, notes FROM user_machines") == [("Press 12", "greased monthly")]
        assert cluster.query("SELECT outcome, count(*) FROM telegram_updates GROUP BY outcome") == [("applied", len(MACHINE))]
        assert len([c for c in sandbox.calls("sendMessage") if c["status"] == 200]) == len(MACHINE)
        long_polls = [c for c in sandbox.calls("getUpdates") if float(c["params"].get("timeout") or 0) >= 25]
        assert len(long_polls) >= 2, "the poller kept polling through the outage"
    finally:
        bot.stop_all()


CHATS = range(7401, 7431)


def test_a_primary_that_drops_again_during_the_replay(sandbox: SandboxClient, cluster: Cluster, tmp_path: Path) -> None:
    bot = Bot(sandbox, cluster.url, tmp_path)
    worker = bot.start(JOURNAL_PATH=str(tmp_path / "journal.sqlite3"), OUTAGE_GRACE_SECONDS="1", TELEGRAM_CHAT_RATE="0")
    try:
        sandbox.say(CHATS[0], "/library")
        sandbox.wait_for_reply(CHATS[0], 1)
        cluster.crash()
        worker.wait_for("journal.engaged", GUARD_SECONDS)
        for chat in CHATS:  # 30 conversations taken in by the journal: a replay long enough to interrupt
            for text in MACHINE:
                sandbox.say(chat, text.replace("Press 12", f"Press {chat}"))
        for chat in CHATS:
            sandbox.wait_for_reply(chat, len(MACHINE) + (chat == CHATS[0]), seconds=GUARD_SECONDS)

        cluster.start()
        wait_until(lambda: cluster.query("SELECT count(*) FROM telegram_updates")[0][0] >= 20, "the replay under way", 60)
        cluster.crash()  # back, and gone again in the middle of the replay
        worker.wait_for("journal.replay_interrupted", GUARD_SECONDS)
        sandbox.say(CHATS[0], "/library")  # still answered, from the journal
        sandbox.wait_for_reply(CHATS[0], len(MACHINE) + 2, seconds=GUARD_SECONDS)

        cluster.start()
        worker.wait_for("journal.replayed", GUARD_SECONDS)
        machines = cluster.query("SELECT user_id, nickname FROM user_machines")
        assert sorted(machines) == [(chat, f"Press {chat}") for chat in CHATS]
        updates = len(CHATS) * len(MACHINE) + 2
        assert cluster.query("SELECT outcome, count(*) FROM telegram_updates GROUP BY outcome") == [("applied", updates)]
        assert len([c for c in sandbox.calls("sendMessage") if c["status"] == 200]) == updates
    finally:
        bot.stop_all()
