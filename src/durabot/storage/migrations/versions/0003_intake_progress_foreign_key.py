"""Tie every intake progress row to its case with a foreign key (on delete cascade).

Refuses to run while orphans exist — progress rows whose case is missing, which legacy
deployments have — and says how to repair them first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from durabot.errors import OperatorError

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_case_intake_progress_case_id_cases"


class OrphansFound(OperatorError, RuntimeError):
    """The foreign key cannot be added while progress rows point at missing cases."""


def upgrade() -> None:
    orphans = op.get_bind().scalar(
        sa.text(
            "SELECT count(*) FROM case_intake_progress p "
            "WHERE NOT EXISTS (SELECT 1 FROM cases c WHERE c.case_id = p.case_id)"
        )
    )
    if orphans:
        raise OrphansFound(
            f"{orphans} intake progress row(s) belong to cases that do not exist. "
            "Run `durabot repair orphans --dry-run` to list them, `durabot repair orphans` to recreate "
            "their cases, then `durabot migrate` again."
        )
    with op.batch_alter_table("case_intake_progress") as batch:
        batch.create_foreign_key(FOREIGN_KEY, "cases", ["case_id"], ["case_id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("case_intake_progress") as batch:
        batch.drop_constraint(FOREIGN_KEY, type_="foreignkey")
