"""The case and intake-progress stores in SQLAlchemy Core, their per-step statements built once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Row, Table, bindparam, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from durabot.domain.cases import Case, CaseStatus, IntakeProgress
from durabot.storage.tables import CaseIntakeProgressRow, CaseRow

CASES: Table = CaseRow.__table__  # type: ignore[assignment]
PROGRESS: Table = CaseIntakeProgressRow.__table__  # type: ignore[assignment]
_k, _p = CASES.c, PROGRESS.c

_GET_CASE = select(CASES).where(_k.case_id == bindparam("case_id"))
_UPDATE_CASE = (
    update(CASES)
    .where(_k.case_id == bindparam("key"))
    .values(
        title=bindparam("title"), status=bindparam("status"), data=bindparam("data"), updated_at=bindparam("updated_at")
    )
)
_GET_PROGRESS = select(PROGRESS).where(_p.case_id == bindparam("case_id"))
_OPEN_PROGRESS = (
    select(PROGRESS)
    .where(
        _p.user_id == bindparam("user_id"),
        ~exists().where(_k.case_id == _p.case_id, _k.status != CaseStatus.DRAFT.value),
    )
    .order_by(_p.updated_at.desc())
    .limit(1)
)
_UPDATE_PROGRESS = (
    update(PROGRESS)
    .where(_p.case_id == bindparam("key"))
    .values(
        current_block=bindparam("current_block"),
        current_step=bindparam("current_step"),
        completed_blocks=bindparam("completed_blocks"),
        answers=bindparam("answers"),
        updated_at=bindparam("updated_at"),
    )
)


def case_of_row(row: Row[Any]) -> Case:
    """The case a ``cases`` row holds."""
    return Case(
        case_id=row.case_id,
        user_id=row.user_id,
        client_id=row.client_id,
        title=row.title,
        case_type=row.case_type,
        status=CaseStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        data=dict(row.data or {}),
    )


def progress_of_row(row: Row[Any]) -> IntakeProgress:
    """The progress a ``case_intake_progress`` row holds."""
    return IntakeProgress(
        case_id=row.case_id,
        user_id=row.user_id,
        current_block=row.current_block,
        current_step=row.current_step,
        completed_blocks=tuple(row.completed_blocks or ()),
        answers=dict(row.answers or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def case_row(case: Case) -> dict[str, Any]:
    """Every column of a case's row."""
    return {
        "case_id": case.case_id,
        "user_id": case.user_id,
        "client_id": case.client_id,
        "title": case.title,
        "case_type": case.case_type,
        "status": case.status.value,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "data": dict(case.data),
    }


def progress_row(progress: IntakeProgress) -> dict[str, Any]:
    """Every column of an intake progress row."""
    return {
        "case_id": progress.case_id,
        "user_id": progress.user_id,
        "current_block": progress.current_block,
        "current_step": progress.current_step,
        "completed_blocks": list(progress.completed_blocks),
        "answers": dict(progress.answers),
        "created_at": progress.created_at,
        "updated_at": progress.updated_at,
    }


class SqlAlchemyCaseRepository:
    """Cases in ``cases``."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, case: Case) -> None:
        await self._connection.execute(insert(CASES), case_row(case))

    async def get(self, case_id: UUID) -> Case | None:
        row = (await self._connection.execute(_GET_CASE, {"case_id": case_id})).first()
        return case_of_row(row) if row else None

    async def for_user(self, user_id: int) -> list[Case]:
        query = select(CASES).where(_k.user_id == user_id).order_by(_k.created_at.desc())
        return [case_of_row(row) for row in await self._connection.execute(query)]

    async def update(self, case: Case) -> None:
        values = {"title": case.title, "status": case.status.value, "data": dict(case.data), "updated_at": case.updated_at}
        await self._connection.execute(_UPDATE_CASE, {"key": case.case_id, **values})

    async def delete(self, case_id: UUID) -> None:
        await self._connection.execute(delete(CASES).where(_k.case_id == case_id))


class SqlAlchemyIntakeProgressRepository:
    """Intake progress in ``case_intake_progress``."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, progress: IntakeProgress) -> None:
        await self._connection.execute(insert(PROGRESS), progress_row(progress))

    async def get(self, case_id: UUID) -> IntakeProgress | None:
        row = (await self._connection.execute(_GET_PROGRESS, {"case_id": case_id})).first()
        return progress_of_row(row) if row else None

    async def open_for_user(self, user_id: int) -> IntakeProgress | None:
        row = (await self._connection.execute(_OPEN_PROGRESS, {"user_id": user_id})).first()
        return progress_of_row(row) if row else None

    async def update(self, progress: IntakeProgress) -> None:
        values = {
            "key": progress.case_id,
            "current_block": progress.current_block,
            "current_step": progress.current_step,
            "completed_blocks": list(progress.completed_blocks),
            "answers": dict(progress.answers),
            "updated_at": progress.updated_at,
        }
        await self._connection.execute(_UPDATE_PROGRESS, values)

    async def orphans(self) -> list[IntakeProgress]:
        missing = ~exists().where(_k.case_id == _p.case_id)
        query = select(PROGRESS).where(missing).order_by(_p.created_at)
        return [progress_of_row(row) for row in await self._connection.execute(query)]

    async def for_user(self, user_id: int) -> list[IntakeProgress]:
        query = select(PROGRESS).where(_p.user_id == user_id).order_by(_p.created_at)
        return [progress_of_row(row) for row in await self._connection.execute(query)]

    async def delete(self, case_id: UUID) -> None:
        await self._connection.execute(delete(PROGRESS).where(_p.case_id == case_id))
