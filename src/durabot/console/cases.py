"""The cases as the practice reviews them: each case with its intake answers, progress, criteria and review status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from durabot.domain.cases import Case, CaseStatus, history_of
from durabot.flows.eb1a_intake import EB1A_INTAKE, SECTIONS, progress_summary
from durabot.flows.model import Answers
from durabot.storage.case_repositories import CASES, PROGRESS, case_of_row
from durabot.storage.database import Database
from durabot.storage.tables import CaseReviewRow

REVIEWS = cast(Table, CaseReviewRow.__table__)
REVIEW_STATUSES = ("new", "in_review", "needs_info", "accepted", "declined")
"""Where the practice's review of a case can stand; ``new`` until an operator sets another."""


@dataclass(frozen=True)
class Answered:
    """One answered question, as a page shows it."""

    label: str
    value: str


@dataclass(frozen=True)
class CaseView:
    """A case with what the console shows of it."""

    case: Case
    answers: Answers
    percent: int
    criteria: tuple[str, ...]
    review: str
    reviewed_by: str | None
    review_updated_at: datetime | None
    answered_at: datetime | None = None
    """When the client last answered (the intake's progress), if there is progress."""

    @property
    def history(self) -> list[tuple[str, datetime]]:
        """What happened to the case (started, resumed, recovered, completed, cancelled), oldest first."""
        return history_of(self.case)

    @property
    def last_change(self) -> datetime:
        """When the case or its intake's answers last changed."""
        return max(self.case.updated_at, self.answered_at or self.case.updated_at)

    @property
    def client(self) -> str:
        return str(self.answers.values.get("full_name") or f"client {self.case.client_id}")

    @property
    def email(self) -> str:
        return str(self.answers.values.get("email") or "")

    def blocks(self) -> list[tuple[str, list[Answered]]]:
        """The answers grouped by block, in the questionnaire's order (unanswered questions left out)."""
        grouped: list[tuple[str, list[Answered]]] = []
        for section in SECTIONS:
            rows = [
                Answered(step.label, _shown(self.answers.values[step.key]))
                for step in EB1A_INTAKE.steps
                if step.section == section.key and step.key in self.answers.values
            ]
            if rows:
                grouped.append((section.title, rows))
        return grouped

    def as_json(self) -> dict[str, Any]:
        """Everything about the case, for its JSON export."""
        return {
            "case_id": str(self.case.case_id),
            "status": self.case.status.value,
            "review": self.review,
            "client_id": self.case.client_id,
            "created_at": self.case.created_at.isoformat(),
            "updated_at": self.last_change.isoformat(),
            "percent_answered": self.percent,
            "criteria_claimed": list(self.criteria),
            "history": [{"event": event, "at": at.isoformat()} for event, at in self.history],
            "answers": {title: {row.label: row.value for row in rows} for title, rows in self.blocks()},
        }


def _shown(value: Any) -> str:
    return "skipped" if value is None else str(value)


class CaseBook:
    """Reads cases for the console and keeps their review status."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def all(self, status: str | None = None, search: str = "") -> list[CaseView]:
        """Every case, newest first; ``status`` filters by the case's or the review's status, ``search`` by name or email."""
        query = (
            select(CASES, PROGRESS.c.answers.label("progress_answers"), PROGRESS.c.updated_at.label("progress_updated_at"),
                   REVIEWS.c.status.label("review"),
                   REVIEWS.c.updated_by, REVIEWS.c.updated_at.label("reviewed_at"))
            .outerjoin(PROGRESS, PROGRESS.c.case_id == CASES.c.case_id)
            .outerjoin(REVIEWS, REVIEWS.c.case_id == CASES.c.case_id)
            .order_by(CASES.c.created_at.desc())
        )
        async with self._database.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        views = [_view(row) for row in rows]
        if status:
            views = [v for v in views if status in (v.case.status.value, v.review)]
        needle = search.strip().casefold()
        if needle:
            views = [v for v in views if needle in v.client.casefold() or needle in v.email.casefold()]
        return views

    async def get(self, case_id: UUID) -> CaseView | None:
        """One case."""
        return next((view for view in await self.all() if view.case.case_id == case_id), None)

    async def set_review(self, case_id: UUID, status: str, operator: str, now: datetime) -> None:
        """Store where the review of the case stands.

        Raises:
            ValueError: ``status`` is not one of :data:`REVIEW_STATUSES`.
        """
        if status not in REVIEW_STATUSES:
            raise ValueError(f"unknown review status {status!r}")
        upsert = pg_insert(REVIEWS) if self._database.is_postgresql else sqlite_insert(REVIEWS)
        statement = upsert.values(case_id=case_id, status=status, updated_by=operator, updated_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=[REVIEWS.c.case_id],
            set_={"status": statement.excluded.status, "updated_by": statement.excluded.updated_by,
                  "updated_at": statement.excluded.updated_at},
        )
        async with self._database.transaction() as connection:
            await connection.execute(statement)


def _view(row: Any) -> CaseView:
    case = case_of_row(row)
    answers = Answers.from_json(row.progress_answers)
    summary = progress_summary(answers)
    percent = 100 if case.status is CaseStatus.INTAKE_COMPLETE else summary.percent_answered
    criteria = tuple(criterion.reference for criterion in summary.claimed)
    return CaseView(case, answers, percent, criteria, row.review or "new", row.updated_by, row.reviewed_at, row.progress_updated_at)
