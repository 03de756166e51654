"""The EB-1A intake on SQLite and PostgreSQL: atomic case creation, resume, guard, order, validation."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from structlog.testing import capture_logs

from durabot.actions.intake import IntakeActions
from durabot.bootstrap import build_registry
from durabot.clock import FakeClock
from durabot.domain.cases import RECOVERED_BY_GUARD_TITLE, Case
from durabot.engine.events import Event
from durabot.engine.ports import Domains
from durabot.engine.registry import FlowEntry, Registry
from durabot.engine.runner import APOLOGY
from durabot.flows.eb1a_intake import EB1A_INTAKE
from durabot.storage.tables import CaseIntakeProgressRow, CaseRow
from tests.conftest import ScratchDatabase
from tests.integration.conftest import Chat, Harness
from tests.integration.intake_answers import ALL, BASIC, FIRST_FOUR_BLOCKS

FIRST_QUESTION = "Basic information (part 1 of 6) · Question 1 of 8"


async def answer(chat: Chat, pairs: list[tuple[str, str]]) -> list[str]:
    replies: list[str] = []
    for _key, text in pairs:
        replies = await chat.say(text)
    return replies


async def test_intake_start_creates_the_case_and_its_progress_together(chat: Chat, harness: Harness) -> None:
    replies = await chat.say("/intake_start")
    assert replies[0].startswith(FIRST_QUESTION)
    [case] = await harness.rows(CaseRow)
    assert (case.title, case.case_type, case.status, case.client_id, case.user_id) == (
        "Intake Session", "EB1A", "draft", chat.user_id, chat.user_id,
    )
    [progress] = await harness.rows(CaseIntakeProgressRow)
    assert (progress.case_id, progress.current_block, progress.current_step) == (case.case_id, "basic", "full_name")


class FailAfterCaseInsert(IntakeActions):
    """The case is inserted, then creating its progress fails."""

    async def create_progress(self, domains: Domains, case: Case) -> Any:
        assert await domains.cases.get(case.case_id) is not None
        raise RuntimeError("power cut between the two inserts")


def registry_with(actions: IntakeActions) -> Registry:
    registry = build_registry()
    registry.flows = [
        FlowEntry(entry.flow, actions, entry.description, entry.resume_command, entry.cancel_command, entry.status_command)
        if entry.flow is EB1A_INTAKE
        else entry
        for entry in registry.flows
    ]
    return registry


async def test_a_failure_after_the_case_insert_leaves_neither_case_nor_progress(
    test_db: ScratchDatabase, clock: FakeClock
) -> None:
    harness = Harness(test_db, clock, registry_with(FailAfterCaseInsert(EB1A_INTAKE, clock)))
    try:
        assert await Chat(harness).say("/intake_start") == [APOLOGY]
        assert await harness.rows(CaseRow) == []
        assert await harness.rows(CaseIntakeProgressRow) == []
    finally:
        await harness.close()


async def test_intake_start_with_an_intake_in_progress_resumes_it(chat: Chat, harness: Harness) -> None:
    await chat.say("/intake_start")
    await answer(chat, BASIC[:2])
    replies = await chat.say("/intake_start")
    assert replies[0].startswith("Welcome back!")
    assert "• Email: maria@example.org" in replies[0] and "Question 3 of 8" in replies[0]
    harness.clock.advance(hours=30)  # the conversation expires; the draft case and its progress stay
    replies = await chat.say("/intake_start")
    assert replies[0].startswith("Welcome back!") and "Question 3 of 8" in replies[0]
    assert len(await harness.rows(CaseRow)) == 1
    replies = await chat.say("/intake_resume")
    assert replies[0].startswith("Welcome back!")


async def test_progress_follows_the_client_block_by_block(chat: Chat, harness: Harness) -> None:
    await chat.say("/intake_start")
    await answer(chat, BASIC)
    [progress] = await harness.rows(CaseIntakeProgressRow)
    assert (progress.current_block, progress.current_step, progress.completed_blocks) == (
        "field", "field_of_endeavour", ["basic"],
    )
    status = (await chat.say("/intake_status"))[0]
    assert "Field of endeavour" in status and "%" in status
    await chat.say("/back")
    [progress] = await harness.rows(CaseIntakeProgressRow)
    assert (progress.current_block, progress.current_step, progress.completed_blocks) == (
        "basic", "us_immigration_status", [],
    )


async def test_a_full_intake_completes_the_case_with_a_summary(chat: Chat, harness: Harness) -> None:
    await chat.say("/intake_start")
    replies = await answer(chat, ALL)
    assert "4 of the 10 criteria" in replies[0]
    assert "(i) awards" in replies[0] and "(iv) judging" in replies[0] and "at least 3" in replies[0]
    [case] = await harness.rows(CaseRow)
    assert case.status == "intake_complete"
    [progress] = await harness.rows(CaseIntakeProgressRow)
    assert progress.current_step is None and len(progress.completed_blocks) == 6
    assert progress.answers["answers"]["awards"] is True
    assert await harness.conversations() == []


async def test_intake_cancel_keeps_the_case_as_cancelled(chat: Chat, harness: Harness) -> None:
    await chat.say("/intake_start")
    await answer(chat, BASIC[:1])
    replies = await chat.say("/intake_cancel")
    assert "cancelled" in replies[0] and "kept" in replies[0]
    [case] = await harness.rows(CaseRow)
    assert case.status == "cancelled"
    assert (await chat.say("/intake_cancel"))[0].startswith("You have nothing in progress to cancel.")
    assert (await chat.say("/intake_start"))[0].startswith(FIRST_QUESTION)
    assert len(await harness.rows(CaseRow)) == 2


@pytest.mark.parametrize(
    ("position", "bad", "message", "good"),
    [
        (1, "maria.example.org", "email", "maria@example.org"),
        (2, "555 123 4567", "+", "+1 555 123 4567"),
        (3, "2099-01-01", "future", "1985-04-03"),
        (3, "31.02.1985", "date", "28.02.1985"),
        (10, "200", "70", "12"),
        (15, "2199", "year", "2012"),
    ],
)
async def test_a_bad_answer_is_refused_with_a_reason_and_asked_again(
    chat: Chat, harness: Harness, position: int, bad: str, message: str, good: str
) -> None:
    await chat.say("/intake_start")
    before = await answer(chat, FIRST_FOUR_BLOCKS[:position])
    question = before[0].split("\n")[0]
    refused = (await chat.say(bad))[0]
    assert message.lower() in refused.lower().split(question)[0]
    assert question in refused
    [progress] = await harness.rows(CaseIntakeProgressRow)
    assert progress.current_step == FIRST_FOUR_BLOCKS[position][0]
    assert (await chat.say(good))[0].split("\n")[0] != question


async def test_twenty_parallel_answers_apply_in_order_to_one_case(test_db: ScratchDatabase, clock: FakeClock) -> None:
    harness = Harness(test_db, clock)
    try:
        await harness.engine.handle(Event.message(1, 77, 77, "/intake_start"))
        events = [Event.message(10 + n, 77, 77, text) for n, (_key, text) in enumerate(FIRST_FOUR_BLOCKS)]
        assert len(events) == 20
        random.Random(3).shuffle(events)
        await asyncio.gather(*(harness.engine.receive([event]) for event in events))
        await asyncio.gather(*(harness.engine.process_chat(77) for _ in range(20)))
        [case] = await harness.rows(CaseRow)
        [progress] = await harness.rows(CaseIntakeProgressRow)
        assert progress.case_id == case.case_id
        stored = progress.answers["answers"]
        assert list(progress.answers["order"]) == [key for key, _ in FIRST_FOUR_BLOCKS]
        assert stored["email"] == "maria@example.org" and stored["degree_year"] == 2012
        assert stored["previous_positions"] is None
        assert progress.current_block == "evidence" and progress.completed_blocks == [
            "basic", "field", "education", "employment",
        ]
    finally:
        await harness.close()


async def _delete_cases_leaving_orphans(harness: Harness) -> None:
    """What a legacy database without the foreign key allowed: a case removed, its progress left behind."""
    if harness.database.is_sqlite:  # a plain connection: SQLite enforces foreign keys only when asked to
        with contextlib.closing(sqlite3.connect(harness.test_db.url.removeprefix("sqlite:///"))) as connection:
            connection.execute("DELETE FROM cases")
            connection.commit()
        return
    async with harness.database.transaction() as connection:
        await connection.execute(sqlalchemy.text("SET LOCAL session_replication_role = replica"))  # no foreign-key triggers
        await connection.execute(sqlalchemy.delete(CaseRow))


async def test_the_guard_recreates_a_missing_case_and_logs_it(test_db: ScratchDatabase, clock: FakeClock) -> None:
    harness = Harness(test_db, clock)
    chat = Chat(harness)
    try:
        await chat.say("/intake_start")
        [case] = await harness.rows(CaseRow)
        with capture_logs() as untouched:
            await chat.say(BASIC[0][1])
        assert not [e for e in untouched if "missing" in e["event"] or "recovered" in e["event"]]
        assert [(row.title, row.updated_at) for row in await harness.rows(CaseRow)] == [(case.title, case.updated_at)]

        await _delete_cases_leaving_orphans(harness)
        with capture_logs() as events:
            replies = await chat.say(BASIC[1][1])
        assert "Question 3 of 8" in replies[0], "the client carries on as if nothing happened"
        [recovered] = await harness.rows(CaseRow)
        assert (recovered.case_id, recovered.title, recovered.status) == (case.case_id, RECOVERED_BY_GUARD_TITLE, "draft")
        logged = {e["event"]: e for e in events}
        for name in ("intake.case_missing", "ensure_case_exists.case_missing", "intake.case_recovered"):
            assert logged[name]["user_id"] == chat.user_id and logged[name]["case_id"] == str(case.case_id)
        assert logged["ensure_case_exists.case_missing"]["handler"] == "answer"
    finally:
        await harness.close()


@contextlib.contextmanager
def progress_reads(harness: Harness) -> Iterator[list[str]]:
    """The statements that read ``case_intake_progress`` while the block runs (run by the harness's engine)."""
    reads: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "case_intake_progress" in statement:
            reads.append(statement)

    engine = harness.database.engine.sync_engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        yield reads
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)


async def test_every_intake_step_reads_the_progress_once(chat: Chat, harness: Harness) -> None:
    steps = [
        "/intake_start", BASIC[0][1], "not an email", BASIC[1][1], "/back", BASIC[1][1],
        "/intake_start", "/intake_status", "/intake_resume", "/intake_cancel",
    ]
    reads_per_step = {}
    for number, text in enumerate(steps):
        with progress_reads(harness) as reads:
            await chat.say(text)
        reads_per_step[f"{number}: {text}"] = len(reads)
    assert reads_per_step == {label: 1 for label in reads_per_step}

    await chat.say("/intake_start")
    for _key, text in ALL:
        with progress_reads(harness) as reads:
            await chat.say(text)
        assert len(reads) == 1, f"answering {_key} read the progress {len(reads)} times"
    [_cancelled, completed] = sorted(await harness.rows(CaseRow), key=lambda row: row.created_at)
    assert completed.status == "intake_complete"


async def test_after_a_long_pause_the_intake_is_kept_and_the_client_is_told_how_to_carry_on(
    chat: Chat, harness: Harness
) -> None:
    await chat.say("/intake_start")
    await answer(chat, BASIC[:3])
    harness.clock.advance(hours=25)
    await harness.engine.cleanup()
    replies = await chat.say("1985-04-03")
    assert replies[0].startswith("You paused your intake for a while. Everything you entered is saved")
    replies = await chat.say("/intake_resume")
    assert replies[0].startswith("Welcome back!") and "• Phone: +15551234567" in replies[0]
    assert len(await harness.rows(CaseRow)) == 1
