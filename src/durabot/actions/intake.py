"""The domain side of the EB-1A intake: the case and its progress are created, kept in step and guarded."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime

import structlog

from durabot.clock import Clock, utc_now
from durabot.domain.cases import (
    RECOVERED_BY_GUARD_TITLE,
    Case,
    CaseNotFoundError,
    CaseService,
    CaseStatus,
    IntakeProgress,
)
from durabot.engine.ports import Domains
from durabot.engine.registry import BasicFlowActions, FlowActions
from durabot.flows.eb1a_intake import completion_summary, progress_summary, status_text
from durabot.flows.model import Answers, Flow
from durabot.replies import Reply

log = structlog.get_logger("durabot.intake")


async def ensure_case_exists(domains: Domains, progress: IntakeProgress, handler: str, now: datetime) -> Case:
    """The case of ``progress``; a missing one (legacy data) is re-created with the same id, and logged."""
    cases = CaseService(domains.cases)
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
    """Opens the case with its progress in the step's transaction, and keeps both in step with the answers.

    Every event on an intake conversation loads the client's open progress once, in :meth:`begin`,
    which also runs the case guard; the copy it returns hands that progress to the event's other hooks.
    """

    def __init__(self, flow: Flow, clock: Clock = utc_now) -> None:
        self._flow = flow
        self._clock = clock
        self._begun = False
        self._open: IntakeProgress | None = None
        """Once begun: the client's open progress, as this event has left it so far."""

    async def begin(self, domains: Domains, user_id: int, handler: str) -> FlowActions:
        event_actions = copy.copy(self)
        event_actions._open = await self._open_progress(domains, user_id, handler)
        event_actions._begun = True
        return event_actions

    async def opened(self, domains: Domains, user_id: int, create: bool) -> Answers | None:
        progress = await self._open_progress(domains, user_id, "intake_start")
        if progress is not None:
            await CaseService(domains.cases).record(progress.case_id, "resumed", self._clock())
            return Answers.from_json(progress.answers)
        if not create:
            return None
        case = await self.create_case(domains, user_id)
        self._remember(await self.create_progress(domains, case))
        return Answers()

    async def create_case(self, domains: Domains, user_id: int) -> Case:
        """Open a draft EB-1A case for the client."""
        case = await CaseService(domains.cases).create(user_id, client_id=user_id, now=self._clock())
        log.info("intake.case_created", user_id=user_id, case_id=str(case.case_id))
        return case

    async def create_progress(self, domains: Domains, case: Case) -> IntakeProgress:
        """The case's intake progress, at the first question of the first block."""
        first = self._flow.steps[0]
        now = self._clock()
        blank = Answers().to_json()
        progress = IntakeProgress(case.case_id, case.user_id, first.section, first.key, (), blank, now, now)
        await domains.intake.add(progress)
        return progress

    async def moved(self, domains: Domains, user_id: int, answers: Answers) -> None:
        await self._record_position(domains, user_id, answers)

    async def complete(self, domains: Domains, user_id: int, answers: Answers) -> Reply:
        progress = await self._record_position(domains, user_id, answers)
        await CaseService(domains.cases).change_status(progress.case_id, CaseStatus.INTAKE_COMPLETE, self._clock())
        self._remember(None)
        log.info("intake.completed", user_id=user_id, case_id=str(progress.case_id))
        return Reply(completion_summary(answers))

    async def cancelled(self, domains: Domains, user_id: int) -> str | None:
        progress = await self._open_progress(domains, user_id, "intake_cancel")
        if progress is None:
            return None
        await CaseService(domains.cases).change_status(progress.case_id, CaseStatus.CANCELLED, self._clock())
        self._remember(None)
        log.info("intake.cancelled", user_id=user_id, case_id=str(progress.case_id))
        return (
            "Your case is kept with the status “cancelled”, and nothing you entered was deleted. "
            f"Send /{self._flow.command} to open a new intake."
        )

    async def status(self, domains: Domains, user_id: int, answers: Answers) -> str:
        return status_text(progress_summary(answers, self._flow))

    def expired_notice(self, flow: Flow, resuming: bool) -> str | None:
        if resuming:
            return None
        return (
            "You paused your intake for a while. Everything you entered is saved: "
            f"send /{flow.command} to carry on where you left off."
        )

    async def _open_progress(self, domains: Domains, user_id: int, handler: str | None) -> IntakeProgress | None:
        """The client's open progress: as :meth:`begin` loaded it, or loaded now (and guarded, given ``handler``)."""
        if self._begun:
            return self._open
        progress = await domains.intake.open_for_user(user_id)
        if progress is not None and handler is not None:
            await ensure_case_exists(domains, progress, handler, self._clock())
        return progress

    def _remember(self, progress: IntakeProgress | None) -> None:
        """Keep what this event changed, for its later hooks (nothing to keep before :meth:`begin`)."""
        if self._begun:
            self._open = progress

    async def _record_position(self, domains: Domains, user_id: int, answers: Answers) -> IntakeProgress:
        """Store where ``answers`` put the client; the event's guard (:meth:`begin`) has already run."""
        progress = await self._open_progress(domains, user_id, None)
        if progress is None:  # cancelled from another chat meanwhile: carry on under a fresh case
            log.warning("intake.progress_missing", user_id=user_id)
            progress = await self.create_progress(domains, await self.create_case(domains, user_id))
        step = self._flow.current_step(answers)
        progress = replace(
            progress,
            current_block=step.section if step else None,
            current_step=step.key if step else None,
            completed_blocks=tuple(self._flow.completed_sections(answers)),
            answers=answers.to_json(),
            updated_at=self._clock(),
        )
        await domains.intake.update(progress)
        self._remember(progress)
        return progress
