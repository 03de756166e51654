"""The domain side of the EB-1A intake: the case and its progress are created, kept in step and guarded."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import structlog

from durabot.domain.cases import (
    RECOVERED_BY_GUARD_TITLE,
    Case,
    CaseNotFoundError,
    CaseService,
    CaseStatus,
    IntakeProgress,
)
from durabot.engine.ports import UnitOfWork
from durabot.engine.registry import BasicFlowActions
from durabot.engine.runner import Clock, utc_now
from durabot.flows.eb1a_intake import completion_summary, progress_summary, status_text
from durabot.flows.model import Answers, Flow
from durabot.replies import Reply

log = structlog.get_logger("durabot.intake")


async def ensure_case_exists(uow: UnitOfWork, progress: IntakeProgress, handler: str, now: datetime) -> Case:
    """The case of ``progress``; a missing one (legacy data) is re-created with the same id, and logged."""
    cases = CaseService(uow.cases)
    try:
        return await cases.get(progress.case_id)
    except CaseNotFoundError:
        pass
    ids = {"user_id": progress.user_id, "case_id": str(progress.case_id)}
    log.warning("intake.case_missing", **ids)
    log.warning("ensure_case_exists.case_missing", handler=handler, **ids)
    case = await cases.create(
        progress.user_id, progress.user_id, now, title=RECOVERED_BY_GUARD_TITLE, case_id=progress.case_id
    )
    log.info("intake.case_recovered", **ids)
    return case


class IntakeActions(BasicFlowActions):
    """Opens the case with its progress in the step's transaction, and keeps both in step with the answers."""

    def __init__(self, flow: Flow, clock: Clock = utc_now) -> None:
        self._flow = flow
        self._clock = clock

    async def opened(self, uow: UnitOfWork, user_id: int, create: bool) -> Answers | None:
        progress = await uow.intake.open_for_user(user_id)
        if progress is not None:
            await ensure_case_exists(uow, progress, "intake_start", self._clock())
            return Answers.from_json(progress.answers)
        if not create:
            return None
        case = await self.create_case(uow, user_id)
        await self.create_progress(uow, case)
        return Answers()

    async def create_case(self, uow: UnitOfWork, user_id: int) -> Case:
        """Open a draft EB-1A case for the client."""
        case = await CaseService(uow.cases).create(user_id, client_id=user_id, now=self._clock())
        log.info("intake.case_created", user_id=user_id, case_id=str(case.case_id))
        return case

    async def create_progress(self, uow: UnitOfWork, case: Case) -> IntakeProgress:
        """The case's intake progress, at the first question of the first block."""
        first = self._flow.steps[0]
        now = self._clock()
        progress = IntakeProgress(case.case_id, case.user_id, first.section, first.key, (), Answers().to_json(), now, now)
        await uow.intake.add(progress)
        return progress

    async def touched(self, uow: UnitOfWork, user_id: int, handler: str) -> None:
        progress = await uow.intake.open_for_user(user_id)
        if progress is not None:
            await ensure_case_exists(uow, progress, handler, self._clock())

    async def moved(self, uow: UnitOfWork, user_id: int, answers: Answers) -> None:
        await self._record_position(uow, user_id, answers)

    async def complete(self, uow: UnitOfWork, user_id: int, answers: Answers) -> Reply:
        progress = await self._record_position(uow, user_id, answers)
        await CaseService(uow.cases).change_status(progress.case_id, CaseStatus.INTAKE_COMPLETE, self._clock())
        log.info("intake.completed", user_id=user_id, case_id=str(progress.case_id))
        return Reply(completion_summary(answers))

    async def cancelled(self, uow: UnitOfWork, user_id: int) -> str | None:
        progress = await uow.intake.open_for_user(user_id)
        if progress is None:
            return None
        await ensure_case_exists(uow, progress, "intake_cancel", self._clock())
        await CaseService(uow.cases).change_status(progress.case_id, CaseStatus.CANCELLED, self._clock())
        log.info("intake.cancelled", user_id=user_id, case_id=str(progress.case_id))
        return (
            "Your case is kept with the status “cancelled”, and nothing you entered was deleted. "
            f"Send /{self._flow.command} to open a new intake."
        )

    async def status(self, uow: UnitOfWork, user_id: int, answers: Answers) -> str:
        return status_text(progress_summary(answers, self._flow))

    def expired_notice(self, flow: Flow, resuming: bool) -> str | None:
        if resuming:
            return None
        return (
            "You paused your intake for a while. Everything you entered is saved: "
            f"send /{flow.command} to carry on where you left off."
        )

    async def _record_position(self, uow: UnitOfWork, user_id: int, answers: Answers) -> IntakeProgress:
        """Store where ``answers`` put the client; the event's guard (:meth:`touched`) has already run."""
        progress = await uow.intake.open_for_user(user_id)
        if progress is None:  # cancelled from another chat meanwhile: carry on under a fresh case
            log.warning("intake.progress_missing", user_id=user_id)
            progress = await self.create_progress(uow, await self.create_case(uow, user_id))
        step = self._flow.current_step(answers)
        progress = replace(
            progress,
            current_block=step.section if step else None,
            current_step=step.key if step else None,
            completed_blocks=tuple(self._flow.completed_sections(answers)),
            answers=answers.to_json(),
            updated_at=self._clock(),
        )
        await uow.intake.update(progress)
        return progress
