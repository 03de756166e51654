"""Replay: the journal's updates, with the steps applied on them, go into the primary per chat in order, once each.

Each journal update is one primary transaction: its inbox row (whose identity makes the replay
idempotent — a row already in the primary means that update was replayed before a crash), the
recorded write-set of its step, and the replies it produced with their send status, so a reply
already sent from the journal is not sent again. Only then is it removed from the journal.

Conflicts with what the primary learnt meanwhile are resolved here and logged as
``journal.conflict``: a nickname taken meanwhile re-asks for the nickname (the step is decided
again on the primary, which says why); an intake opened in the journal while the primary already
had the client's open intake is merged into that one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import Row, delete, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.clock import Clock, utc_now
from durabot.domain.cases import Case, CaseStatus, IntakeProgress
from durabot.domain.machines import MachineDraft, clean_nickname
from durabot.engine.apply import apply_writes, replay as replay_call
from durabot.engine.events import Event
from durabot.engine.dispatch import Dispatcher
from durabot.engine.ports import UnitOfWork
from durabot.engine.registry import Registry
from durabot.engine.runner import APOLOGY, APPLIED, FAILED
from durabot.engine.writes import ConversationWrite, DomainWrite, WriteSet
from durabot.failpoints import failpoint
from durabot.flows.model import Answers
from durabot.journal.codec import load_writes
from durabot.journal.store import JOURNAL_SET_ASIDE, JOURNAL_STEPS, Journal, forget_replayed
from durabot.redaction import redact
from durabot.storage.availability import is_conflict, is_unavailable
from durabot.outbox import OutboxStatus
from durabot.replies import Reply
from durabot.storage.inbox import UPDATES
from durabot.storage.repositories import CONVERSATIONS, OUTBOX, conversation_row
from durabot.storage.unit_of_work import SqlAlchemyUnitOfWork, SqlAlchemyUnitOfWorkFactory

log = structlog.get_logger("durabot.journal")

Decide = Callable[[Event, UnitOfWork, datetime], Awaitable[WriteSet]]
"""Decides a step on a unit of work, as the engine's dispatcher does."""

NICKNAME_TAKEN_NOTICE = (
    "While I was briefly offline I could not check your library, and “{nickname}” turned out to be "
    "taken by another of your machines. Nothing else was lost."
)

CONFLICT_ATTEMPTS = 3
"""How often a journal update that clashed with concurrent work in the primary is tried before it is set aside."""

_UPDATE_COLUMNS = ("bot_id", "update_id", "fingerprint", "chat_id", "user_id", "raw", "event", "received_at",
                   "processed_at", "outcome", "error")
_OUTBOX_COLUMNS = ("chat_id", "method", "payload", "status", "attempts", "next_attempt_at", "last_error",
                   "source_update_id", "created_at", "sent_at")
_INSERT_UPDATE = (
    pg_insert(UPDATES).on_conflict_do_nothing(index_elements=["bot_id", "update_id", "fingerprint"]).returning(UPDATES.c.id)
)


@dataclass
class ReplayReport:
    """What a replay did."""

    updates: int = 0
    steps: int = 0
    replies_sent_before: int = 0
    replies_to_send: int = 0
    already_there: int = 0
    conflicts: int = 0
    set_aside: int = 0
    """Steps the primary would not take (kept in the journal's ``journal_set_aside``, the user told)."""
    chats: set[int] = field(default_factory=set)


class Replayer:
    """Replays ``journal`` into the primary (``primary``, PostgreSQL); a step that conflicts is decided again there.

    Args:
        registry: The bot's flows, for deciding a step again and for a merged conversation's current question.
        ttl: How long an untouched conversation lives (for a step decided again).
    """

    def __init__(self, journal: Journal, primary: SqlAlchemyUnitOfWorkFactory, registry: Registry, ttl: timedelta,
                 clock: Clock = utc_now) -> None:
        self._journal = journal
        self._primary = primary
        self._flows = registry
        self._decide: Decide = Dispatcher(registry, ttl).decide
        self._clock = clock

    async def replay(self, report: ReplayReport | None = None) -> ReplayReport:
        """Replay everything the journal holds now, in arrival order (so each chat's in order); returns what was done."""
        report = report or ReplayReport()
        merges = _CaseMerges()
        while ids := await self._journal_update_ids():
            for row_id in ids:
                await self._replay_update(row_id, merges, report)
        return report

    async def _journal_update_ids(self) -> list[int]:
        async with self._journal.database.engine.connect() as connection:
            query = select(UPDATES.c.id).order_by(UPDATES.c.id).limit(500)
            return [int(row_id) for row_id in (await connection.execute(query)).scalars()]

    async def _replay_update(self, row_id: int, merges: _CaseMerges, report: ReplayReport) -> None:
        """One journal update into the primary, holding the journal's write lock so no journal step runs meanwhile."""
        async with self._journal.database.transaction() as journal:
            row = (await journal.execute(select(UPDATES).where(UPDATES.c.id == row_id))).first()
            if row is None:
                return
            step = None
            if row.outcome == APPLIED and row.chat_id is not None:
                query = select(JOURNAL_STEPS).where(
                    JOURNAL_STEPS.c.chat_id == row.chat_id, JOURNAL_STEPS.c.update_id == row.update_id
                )
                step = (await journal.execute(query.order_by(JOURNAL_STEPS.c.seq).limit(1))).first()
            replies: list[Row[Any]] = []
            if row.chat_id is not None:
                query = select(OUTBOX).where(OUTBOX.c.chat_id == row.chat_id, OUTBOX.c.source_update_id == row.update_id)
                replies = list((await journal.execute(query.order_by(OUTBOX.c.id))).all())
            for attempt in range(1, CONFLICT_ATTEMPTS + 1):
                try:
                    await self._into_primary(row, step, replies, merges, report)
                    break
                except Exception as error:
                    if is_unavailable(error):
                        raise
                    if is_conflict(error) and attempt < CONFLICT_ATTEMPTS:
                        continue  # a clash with a step another worker applied meanwhile: try again
                    await self._set_aside(journal, row, step, replies, error, report)
            failpoint("journal.after_primary_commit")
            await forget_replayed(journal, row.id, row.chat_id, row.update_id, step.seq if step is not None else None)

    async def _set_aside(
        self,
        journal: AsyncConnection,
        row: Row[Any],
        step: Row[Any] | None,
        replies: list[Row[Any]],
        error: Exception,
        report: ReplayReport,
    ) -> None:
        """A step the primary will not take (not an outage: a bug): kept in the journal, recorded as failed, apologised for.

        It holds back no other: the rest of the journal is replayed, and the user is told that
        their last message was not saved, as for any failed step.
        """
        report.set_aside += 1
        reason = f"not replayed from the outage journal: {redact(repr(error))[:500]}"
        log.error("journal.replay_set_aside", chat_id=row.chat_id, update_id=row.update_id, error=type(error).__name__)
        await journal.execute(
            insert(JOURNAL_SET_ASIDE),
            {"chat_id": row.chat_id, "update_id": row.update_id, "writes": step.writes if step is not None else None,
             "error": reason, "set_aside_at": self._clock()},
        )
        try:
            async with self._primary() as uow:
                failed = {c: getattr(row, c) for c in _UPDATE_COLUMNS} | {"outcome": FAILED, "error": reason}
                if (await uow.connection.execute(_INSERT_UPDATE, failed)).first() is not None and row.chat_id is not None:
                    for reply in replies:
                        await uow.connection.execute(OUTBOX.insert(), {c: getattr(reply, c) for c in _OUTBOX_COLUMNS})
                    await uow.outbox.add(row.chat_id, [Reply(APOLOGY)], row.update_id, self._clock())
                await uow.commit()
        except Exception:
            log.exception("journal.replay_set_aside_unrecorded", update_id=row.update_id)

    async def _into_primary(
        self, row: Row[Any], step: Row[Any] | None, replies: list[Row[Any]], merges: _CaseMerges, report: ReplayReport
    ) -> None:
        async with self._primary() as uow:
            if row.chat_id is not None:
                await uow.lock_chat(row.chat_id)
            inserted = (await uow.connection.execute(_INSERT_UPDATE, {c: getattr(row, c) for c in _UPDATE_COLUMNS})).first()
            if inserted is None:  # replayed before a crash, or never left the primary: nothing more to do
                report.already_there += 1
                return
            if step is not None:
                await self._apply_step(uow, Event.from_json(row.event), load_writes(step.writes), merges, report)
                report.steps += 1
            for reply in replies:
                values = {c: getattr(reply, c) for c in _OUTBOX_COLUMNS}
                if values["status"] == OutboxStatus.SENDING.value:
                    values["status"] = OutboxStatus.PENDING.value  # its send may not have gone out: send it
                if values["status"] == OutboxStatus.SENT.value:
                    report.replies_sent_before += 1
                else:
                    report.replies_to_send += 1
                await uow.connection.execute(OUTBOX.insert(), values)
            report.updates += 1
            if row.chat_id is not None:
                report.chats.add(row.chat_id)
            await uow.commit()

    async def _apply_step(
        self, uow: SqlAlchemyUnitOfWork, event: Event, writes: WriteSet, merges: _CaseMerges, report: ReplayReport
    ) -> None:
        taken = await _taken_nickname(uow, writes)
        if taken is not None:
            report.conflicts += 1
            log.warning("journal.conflict", kind="nickname_taken", chat_id=event.chat_id, update_id=event.update_id)
            now = self._clock()
            decided = await self._decide(event, uow, now)
            decided.outgoing.insert(0, Reply(NICKNAME_TAKEN_NOTICE.format(nickname=taken)))
            await apply_writes(decided, event, now, uow.conversations, uow.domains, uow.inbox, uow.outbox)
            return
        for change in writes.conversations.values():
            if await _force_conversation(uow.connection, change, self._flows, merges.answers):
                report.conflicts += 1
                log.warning("journal.conflict", kind="conversation_merged", chat_id=event.chat_id, update_id=event.update_id)
        for user_id, chat_id in writes.tombstones_taken:
            await uow.conversations.delete_tombstones(user_id, chat_id)
        for call in writes.domain:
            await merges.replay(uow, call, event, report)


async def _taken_nickname(uow: SqlAlchemyUnitOfWork, writes: WriteSet) -> str | None:
    """The nickname of a machine the step added that the primary already has for that user, if any."""
    for call in writes.domain:
        if call.store == "machines" and call.method == "add":
            draft: MachineDraft = call.args[0]
            if await uow.machines.find_by_nickname(draft.user_id, draft.nickname) is not None:
                return clean_nickname(draft.nickname)
    return None


async def _force_conversation(
    connection: AsyncConnection, change: ConversationWrite, flows: Registry, kept: dict[int, Answers]
) -> bool:
    """The journal's conversation wins: written whole, replacing the primary's row of the same id or flow.

    If the primary's row moved on without the journal knowing (another worker applied a step on
    it, or the journal never had it), the answers only the primary has are kept alongside the
    journal's — for this step and, through ``kept`` (by conversation id), for the conversation's
    later steps in the same replay — so nothing either side took is lost. Returns whether the
    primary's row had to be merged in.
    """
    c = CONVERSATIONS.c
    if change.conversation is None:
        await connection.execute(delete(CONVERSATIONS).where(c.id == change.id))
        kept.pop(change.id, None)
        return False
    conversation = change.conversation
    same_flow = (
        (c.user_id == conversation.user_id)
        & (c.chat_id == conversation.chat_id)
        & (c.conversation_type == conversation.flow_name)
    )
    query = select(c.id, c.version, c.state_data).where(or_(c.id == change.id, same_flow))
    merged = False
    for row in (await connection.execute(query)).all():
        if row.id == change.id and row.version == change.expected_version:
            continue  # the state the journal went on from
        primary = Answers.from_json(row.state_data)
        only_there = {k: v for k, v in primary.values.items() if k not in conversation.answers.values}
        if only_there:
            earlier = kept.get(change.id, Answers())
            kept[change.id] = Answers({**only_there, **earlier.values}, tuple(k for k in primary.order if k in only_there))
            merged = True
    extra = kept.get(change.id)
    if extra is not None:
        answers = conversation.answers
        missing = {k: v for k, v in extra.values.items() if k not in answers.values}
        if missing:
            order = tuple(k for k in extra.order if k in missing) + answers.order
            answers = Answers({**missing, **answers.values}, order)
            entry = flows.flow_named(conversation.flow_name)
            step = entry.flow.current_step(answers) if entry is not None else None
            current = f"{conversation.flow_name}:{step.key}" if step is not None else conversation.current_step
            conversation = replace(conversation, answers=answers, current_step=current)
    await connection.execute(delete(CONVERSATIONS).where(or_(c.id == change.id, same_flow)))
    await connection.execute(CONVERSATIONS.insert(), conversation_row(conversation, conversation.version))
    return merged


class _CaseMerges:
    """What one replay merged: a journal intake into the client's open one, and conversations' primary-only answers."""

    def __init__(self) -> None:
        self._case_ids: dict[UUID, UUID] = {}
        self.answers: dict[int, Answers] = {}
        """Answers only the primary had, kept for later steps of the same conversation, by conversation id."""

    async def replay(self, uow: SqlAlchemyUnitOfWork, call: DomainWrite, event: Event, report: ReplayReport) -> None:
        match (call.store, call.method, call.args):
            case ("cases", "add", (Case() as case,)):
                await self._add_case(uow, case, event, report)
            case ("cases", "update", (Case() as case,)):
                case = replace(case, case_id=self._case_ids.get(case.case_id, case.case_id))
                if await uow.cases.get(case.case_id) is None:
                    await uow.cases.add(case)
                else:
                    await uow.cases.update(case)
            case ("intake", "add" | "update", (IntakeProgress() as progress,)):
                await self._write_progress(uow, progress)
            case ("cases" | "intake", "delete", (UUID() as case_id,)):
                await replay_call(DomainWrite(call.store, call.method, (self._case_ids.get(case_id, case_id),)), uow)
            case _:
                await replay_call(call, uow)

    async def _add_case(self, uow: SqlAlchemyUnitOfWork, case: Case, event: Event, report: ReplayReport) -> None:
        if await uow.cases.get(case.case_id) is not None:
            await uow.cases.update(case)  # written through before: the same case
            return
        open_progress = await uow.intake.open_for_user(case.user_id) if case.status is CaseStatus.DRAFT else None
        if open_progress is not None and open_progress.case_id != case.case_id:
            self._case_ids[case.case_id] = open_progress.case_id
            report.conflicts += 1
            log.warning("journal.conflict", kind="intake_merged", chat_id=event.chat_id, update_id=event.update_id)
            return
        await uow.cases.add(case)

    async def _write_progress(self, uow: SqlAlchemyUnitOfWork, progress: IntakeProgress) -> None:
        merged_into = self._case_ids.get(progress.case_id)
        if merged_into is not None:
            existing = await uow.intake.get(merged_into)
            progress = replace(progress, case_id=merged_into)
            if existing is not None:
                base, journal = Answers.from_json(existing.answers), Answers.from_json(progress.answers)
                values = {**base.values, **journal.values}
                order = tuple(k for k in base.order if k not in journal.values) + journal.order
                progress = replace(progress, answers=Answers(values, order).to_json(), created_at=existing.created_at)
        if await uow.intake.get(progress.case_id) is None:
            await uow.intake.add(progress)
        else:
            await uow.intake.update(progress)
