"""Cases and intake progress: create them, or adopt a legacy deployment's tables.

A legacy deployment already has ``cases`` (``client_id`` only inside ``data``) and
``case_intake_progress`` without a foreign key. Their tables and rows are kept; ``client_id``
becomes a real column. The foreign key comes in 0003, once orphans are repaired.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "cases" in existing:
        adopt_legacy_cases()
    else:
        op.create_table(
            "cases",
            sa.Column("case_id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.BigInteger(), nullable=False),
            sa.Column("client_id", sa.BigInteger(), nullable=False),
            sa.Column("title", sa.String(200), nullable=False),
            sa.Column("case_type", sa.String(16), nullable=False),
            sa.Column("status", sa.String(32), nullable=False),
            timestamp("created_at"),
            timestamp("updated_at"),
            sa.Column("data", JSON, nullable=False),
            sa.PrimaryKeyConstraint("case_id", name="pk_cases"),
        )
    op.create_index("ix_cases_user_id_created_at", "cases", ["user_id", "created_at"])
    op.create_index("ix_cases_client_id", "cases", ["client_id"])
    if "case_intake_progress" not in existing:
        op.create_table(
            "case_intake_progress",
            sa.Column("case_id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.BigInteger(), nullable=False),
            sa.Column("current_block", sa.String(64), nullable=True),
            sa.Column("current_step", sa.String(128), nullable=True),
            sa.Column("completed_blocks", JSON, nullable=False),
            sa.Column("answers", JSON, nullable=False),
            timestamp("created_at"),
            timestamp("updated_at"),
            sa.PrimaryKeyConstraint("case_id", name="pk_case_intake_progress"),
        )
    op.create_index("ix_case_intake_progress_user_id_updated_at", "case_intake_progress", ["user_id", "updated_at"])


def adopt_legacy_cases() -> None:
    """Give a legacy ``cases`` table its ``client_id`` column, filled from ``data`` (or the user)."""
    bind = op.get_bind()
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("client_id", sa.BigInteger(), nullable=True))
    cases = sa.table(
        "cases",
        sa.column("case_id", sa.Uuid()),
        sa.column("user_id", sa.BigInteger()),
        sa.column("client_id", sa.BigInteger()),
        sa.column("data", JSON),
    )
    for case_id, user_id, data in bind.execute(sa.select(cases.c.case_id, cases.c.user_id, cases.c.data)).all():
        client = (data or {}).get("client_id", user_id)
        bind.execute(sa.update(cases).where(cases.c.case_id == case_id).values(client_id=int(client)))
    with op.batch_alter_table("cases") as batch:
        batch.alter_column("client_id", existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    op.drop_table("case_intake_progress")
    op.drop_table("cases")
