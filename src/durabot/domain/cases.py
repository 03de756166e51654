"""Cases of an immigration practice and their intake progress; a progress row never exists without its case."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID, uuid4

EB1A = "EB1A"
INTAKE_TITLE = "Intake Session"
RECOVERED_BY_GUARD_TITLE = "Intake Session (Recovered)"
RECOVERED_BY_REPAIR_TITLE = "Intake (Recovered)"


class CaseStatus(StrEnum):
    """Where a case stands; stored as these strings."""

    DRAFT = "draft"
    INTAKE_COMPLETE = "intake_complete"
    CANCELLED = "cancelled"


DELETABLE_STATUSES = frozenset({CaseStatus.DRAFT, CaseStatus.CANCELLED})
"""Cases a client can delete with their data; a completed intake (and anything later) stays with the practice."""


@dataclass(frozen=True)
class Case:
    """A client's case."""

    case_id: UUID
    user_id: int
    client_id: int
    title: str
    case_type: str
    status: CaseStatus
    created_at: datetime
    updated_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IntakeProgress:
    """How far a client is in the intake questionnaire of one case."""

    case_id: UUID
    user_id: int
    current_block: str | None
    current_step: str | None
    completed_blocks: tuple[str, ...]
    answers: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime


HISTORY = "history"
"""The key of ``Case.data`` under which a case keeps what happened to it: ``[{"event": …, "at": ISO time}, …]``."""

CaseEvent = str
"""``started``, ``resumed``, ``recovered``, ``intake_complete``, ``cancelled``."""


def with_event(case: Case, event: CaseEvent, at: datetime) -> Case:
    """``case`` with ``event`` added to its history."""
    history = [*case.data.get(HISTORY, ()), {"event": event, "at": at.isoformat()}]
    return replace(case, data={**case.data, HISTORY: history})


def history_of(case: Case) -> list[tuple[CaseEvent, datetime]]:
    """What happened to ``case``, oldest first (cases from before the history was kept start with their creation)."""
    kept = [(str(item["event"]), datetime.fromisoformat(str(item["at"]))) for item in case.data.get(HISTORY, ())]
    return kept or [("started", case.created_at)]


class CaseNotFoundError(Exception):
    """No case has this id."""

    def __init__(self, case_id: UUID) -> None:
        super().__init__(f"case {case_id} not found")
        self.case_id = case_id


class CaseRepository(Protocol):
    """Where cases are kept."""

    async def add(self, case: Case) -> None:
        """Store a new case."""

    async def get(self, case_id: UUID) -> Case | None:
        """The case with this id, if any."""

    async def for_user(self, user_id: int) -> list[Case]:
        """The user's cases, newest first."""

    async def update(self, case: Case) -> None:
        """Store the case's new status, title, data and ``updated_at``."""

    async def delete(self, case_id: UUID) -> None:
        """Remove the case (its intake progress must have been removed first)."""


class IntakeProgressRepository(Protocol):
    """Where intake progress is kept: one row per case."""

    async def add(self, progress: IntakeProgress) -> None:
        """Store the progress of a new intake."""

    async def get(self, case_id: UUID) -> IntakeProgress | None:
        """The progress of this case's intake, if any."""

    async def open_for_user(self, user_id: int) -> IntakeProgress | None:
        """The user's most recent intake whose case is a draft — or is missing (legacy data)."""

    async def update(self, progress: IntakeProgress) -> None:
        """Store the new position, completed blocks and answers."""

    async def orphans(self) -> list[IntakeProgress]:
        """Every progress row whose case does not exist."""

    async def for_user(self, user_id: int) -> list[IntakeProgress]:
        """Every progress row of the user, with or without its case, oldest first."""

    async def delete(self, case_id: UUID) -> None:
        """Remove the progress of this case's intake, if any."""


class CaseService:
    """The only way handlers reach cases: create, get, list, change status."""

    def __init__(self, cases: CaseRepository) -> None:
        self._cases = cases

    async def create(
        self, user_id: int, client_id: int, now: datetime, title: str = INTAKE_TITLE, case_id: UUID | None = None
    ) -> Case:
        """Open a new EB-1A case as a draft (with ``case_id`` when one must be kept: re-created for its orphaned progress)."""
        case = Case(case_id or uuid4(), user_id, client_id, title, EB1A, CaseStatus.DRAFT, now, now)
        case = with_event(case, "recovered" if case_id is not None else "started", now)
        await self._cases.add(case)
        return case

    async def record(self, case_id: UUID, event: CaseEvent, now: datetime) -> None:
        """Add ``event`` to the case's history (nothing if there is no such case)."""
        case = await self._cases.get(case_id)
        if case is not None:
            await self._cases.update(with_event(case, event, now))

    async def get(self, case_id: UUID) -> Case:
        """The case with this id.

        Raises:
            CaseNotFoundError: there is no such case.
        """
        case = await self._cases.get(case_id)
        if case is None:
            raise CaseNotFoundError(case_id)
        return case

    async def exists(self, case_id: UUID) -> bool:
        """Whether a case with this id exists."""
        return await self._cases.get(case_id) is not None

    async def list_for_user(self, user_id: int) -> list[Case]:
        """The user's cases, newest first."""
        return await self._cases.for_user(user_id)

    async def delete_unfinished(self, user_id: int, progress: IntakeProgressRepository) -> tuple[int, list[Case]]:
        """Delete the user's draft and cancelled cases with their intake progress, and progress left without a case.

        Returns:
            How many cases were deleted, and the cases kept (completed intakes, which stay with the practice).
        """
        cases = {case.case_id: case for case in await self._cases.for_user(user_id)}
        deletable = {case_id for case_id, case in cases.items() if case.status in DELETABLE_STATUSES}
        for row in await progress.for_user(user_id):
            if row.case_id in deletable or row.case_id not in cases:
                await progress.delete(row.case_id)
        for case_id in deletable:
            await self._cases.delete(case_id)
        return len(deletable), [case for case in cases.values() if case.case_id not in deletable]

    async def change_status(self, case_id: UUID, status: CaseStatus, now: datetime) -> Case:
        """Move a case to ``status``.

        Raises:
            CaseNotFoundError: there is no such case.
        """
        case = with_event(replace(await self.get(case_id), status=status, updated_at=now), status.value, now)
        await self._cases.update(case)
        return case
