"""SQLAlchemy implementations of the case and intake-progress repositories."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from durabot.domain.cases import Case, CaseStatus, IntakeProgress
from durabot.storage.tables import CaseIntakeProgressRow, CaseRow


def _case(row: CaseRow) -> Case:
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


def _progress(row: CaseIntakeProgressRow) -> IntakeProgress:
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


class SqlAlchemyCaseRepository:
    """Cases in ``cases``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, case: Case) -> None:
        self._session.add(
            CaseRow(
                case_id=case.case_id,
                user_id=case.user_id,
                client_id=case.client_id,
                title=case.title,
                case_type=case.case_type,
                status=case.status.value,
                created_at=case.created_at,
                updated_at=case.updated_at,
                data=dict(case.data),
            )
        )
        await self._session.flush()

    async def get(self, case_id: UUID) -> Case | None:
        row = await self._session.get(CaseRow, case_id, populate_existing=True)
        return _case(row) if row else None

    async def for_user(self, user_id: int) -> list[Case]:
        query = select(CaseRow).where(CaseRow.user_id == user_id).order_by(CaseRow.created_at.desc())
        return [_case(row) for row in await self._session.scalars(query)]

    async def update(self, case: Case) -> None:
        await self._session.execute(
            update(CaseRow)
            .where(CaseRow.case_id == case.case_id)
            .values(title=case.title, status=case.status.value, data=dict(case.data), updated_at=case.updated_at)
            .execution_options(synchronize_session=False)
        )

    async def delete(self, case_id: UUID) -> None:
        await self._session.execute(
            delete(CaseRow).where(CaseRow.case_id == case_id).execution_options(synchronize_session=False)
        )


class SqlAlchemyIntakeProgressRepository:
    """Intake progress in ``case_intake_progress``."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, progress: IntakeProgress) -> None:
        self._session.add(
            CaseIntakeProgressRow(
                case_id=progress.case_id,
                user_id=progress.user_id,
                current_block=progress.current_block,
                current_step=progress.current_step,
                completed_blocks=list(progress.completed_blocks),
                answers=dict(progress.answers),
                created_at=progress.created_at,
                updated_at=progress.updated_at,
            )
        )
        await self._session.flush()

    async def get(self, case_id: UUID) -> IntakeProgress | None:
        row = await self._session.get(CaseIntakeProgressRow, case_id, populate_existing=True)
        return _progress(row) if row else None

    async def open_for_user(self, user_id: int) -> IntakeProgress | None:
        draft_or_missing = ~exists().where(
            CaseRow.case_id == CaseIntakeProgressRow.case_id, CaseRow.status != CaseStatus.DRAFT.value
        )
        query = (
            select(CaseIntakeProgressRow)
            .where(CaseIntakeProgressRow.user_id == user_id, draft_or_missing)
            .order_by(CaseIntakeProgressRow.updated_at.desc())
            .limit(1)
        )
        row = (await self._session.scalars(query)).first()
        return _progress(row) if row else None

    async def update(self, progress: IntakeProgress) -> None:
        await self._session.execute(
            update(CaseIntakeProgressRow)
            .where(CaseIntakeProgressRow.case_id == progress.case_id)
            .values(
                current_block=progress.current_block,
                current_step=progress.current_step,
                completed_blocks=list(progress.completed_blocks),
                answers=dict(progress.answers),
                updated_at=progress.updated_at,
            )
            .execution_options(synchronize_session=False)
        )

    async def orphans(self) -> list[IntakeProgress]:
        missing = ~exists().where(CaseRow.case_id == CaseIntakeProgressRow.case_id)
        query = select(CaseIntakeProgressRow).where(missing).order_by(CaseIntakeProgressRow.created_at)
        return [_progress(row) for row in await self._session.scalars(query)]

    async def for_user(self, user_id: int) -> list[IntakeProgress]:
        query = (
            select(CaseIntakeProgressRow)
            .where(CaseIntakeProgressRow.user_id == user_id)
            .order_by(CaseIntakeProgressRow.created_at)
        )
        return [_progress(row) for row in await self._session.scalars(query)]

    async def delete(self, case_id: UUID) -> None:
        await self._session.execute(
            delete(CaseIntakeProgressRow)
            .where(CaseIntakeProgressRow.case_id == case_id)
            .execution_options(synchronize_session=False)
        )
